"""Nimbus AWS resource clients (Python): ``context.resources[name]`` inside Lambda.

table -> DynamoDB, queue -> SQS, topic -> SNS, bucket -> S3, through boto3 (which the Lambda
Python runtime ships). boto3 is imported and its clients are created lazily, once per process,
and reused by every resource of that service (warm invocations reuse them). Endpoints,
credentials and region come from the standard AWS environment/config (``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ...).

Native names come from the function's environment, set by lowering (crates/nimbus-aws/src/env.rs):
``NIMBUS_RESOURCE_<R>_{NAME,ARN,URL}`` with ``<R>`` the neutral name upper-cased and ``-`` as
``_``; a non-empty string in the resource's function.json ``native`` block is the fallback.

  table:  NAME (DynamoDB table name)     queue: URL (SQS queue URL)
  topic:  ARN (SNS topic ARN)            bucket: NAME (S3 bucket name)

Same API as the local clients (``_nimbus/local_resources.py``), with the same argument checks
(``_nimbus/args.py``).
Failures reported by AWS become ``ResourceError`` with ``type`` one of ``AccessDenied``,
``NotFound``, ``BadRequest``, ``Conflict``, ``Throttled``, ``Unavailable``, ``Internal`` (and
``NotConfigured`` for a missing environment variable), ``message`` AWS's message and ``code``
AWS's error code. On import this module registers the factory of provider ``"aws"``.
See docs/function-contract.md, "Resource clients".
"""

from __future__ import annotations

import decimal
import math
import os
import threading

from . import core
from . import trace as _trace  # the running invocation's traceparent goes with each message
from . import args as _args  # argument checks shared by every provider's clients

PROVIDER = "aws"


class ResourceError(core.ResourceError):
    """AWS refused or failed a resource operation: the shared ``core.ResourceError`` whose
    ``type`` is the neutral error type, plus ``code``, AWS's own error code."""

    def __init__(self, message, type="ResourceError", resource=None, op=None, code=None):  # noqa: A002
        super().__init__(message, type, resource, op)
        self.code = code


# --------------------------------------------------------------------------- AWS errors -> neutral

_ACCESS = {"AccessDenied", "AccessDeniedException", "AuthorizationError", "AuthorizationErrorException",
           "UnauthorizedOperation", "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
           "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AllAccessDisabled",
           "KMSAccessDeniedException", "KMS.AccessDeniedException", "Forbidden"}
_NOT_FOUND = {"ResourceNotFoundException", "NoSuchBucket", "NoSuchKey", "NotFound", "NotFoundException",
              "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue",
              "TableNotFoundException"}
_BAD_REQUEST = {"ValidationException", "ValidationError", "InvalidParameter", "InvalidParameterValue",
                "InvalidParameterException", "InvalidParameterValueException", "InvalidAttributeValue",
                "InvalidAttributeName", "InvalidMessageContents", "SerializationException", "InvalidArgument",
                "InvalidRequest", "MissingParameter", "MalformedInput", "InvalidBucketName", "InvalidKey",
                "KeyTooLongError", "EntityTooLarge", "MessageTooLong", "ItemCollectionSizeLimitExceededException",
                "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "BadRequest"}
_CONFLICT = {"ConditionalCheckFailedException", "TransactionConflictException", "OperationAborted",
             "ResourceInUseException"}
_THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
              "ThrottledException", "RequestLimitExceeded", "SlowDown", "TooManyRequestsException",
              "RequestThrottled", "RequestThrottledException", "KMSThrottlingException"}
_UNAVAILABLE = {"ServiceUnavailable", "ServiceUnavailableException", "InternalFailure"}


def error_type(code, status=None) -> str:
    """AWS error code (and HTTP status) -> neutral error type."""
    code = code or ""
    for names, t in ((_ACCESS, "AccessDenied"), (_NOT_FOUND, "NotFound"), (_BAD_REQUEST, "BadRequest"),
                     (_CONFLICT, "Conflict"), (_THROTTLED, "Throttled"), (_UNAVAILABLE, "Unavailable")):
        if code in names:
            return t
    try:
        status = int(status) if status is not None else None
    except (TypeError, ValueError):
        status = None
    if status in (401, 403):
        return "AccessDenied"
    if status == 404:
        return "NotFound"
    if status == 409:
        return "Conflict"
    if status == 429:
        return "Throttled"
    if status == 503:
        return "Unavailable"
    if status is not None and 400 <= status < 500:
        return "BadRequest"
    return "Internal"


def _from_aws(e, resource, op):
    """An exception raised by boto3 -> ResourceError, or None when it is not an AWS error."""
    response = getattr(e, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        err = response["Error"]
        code = str(err.get("Code") or "")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        msg = err.get("Message") or code or str(e)
        return ResourceError(msg, error_type(code, status), resource, op, code=code or None)
    try:
        from botocore.exceptions import BotoCoreError, NoCredentialsError, PartialCredentialsError
    except ImportError:  # pragma: no cover - boto3 missing is reported when the client is created
        return None
    if isinstance(e, (NoCredentialsError, PartialCredentialsError)):
        return ResourceError(str(e), "AccessDenied", resource, op, code=type(e).__name__)
    if isinstance(e, BotoCoreError):
        return ResourceError(str(e), "Unavailable", resource, op, code=type(e).__name__)
    return None


# --------------------------------------------------------------------------- boto3 clients (per process)

_CLIENTS: dict = {}
_CLIENTS_LOCK = threading.Lock()


def aws_client(service):
    """The process-wide boto3 client of ``service``, created on first use."""
    client = _CLIENTS.get(service)
    if client is not None:
        return client
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(service)
        if client is None:
            try:
                import boto3
            except ImportError:
                raise core.ResourceUnavailableError(
                    "the Nimbus AWS resource clients need boto3 (the AWS Lambda Python runtime ships it)"
                ) from None
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
            client = boto3.session.Session().client(service, region_name=region)
            _CLIENTS[service] = client
    return client


def reset_clients():
    """Forget the cached boto3 clients (tests; a changed environment)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


# --------------------------------------------------------------------------- native names


def env_var(resource: str, field: str) -> str:
    """``NIMBUS_RESOURCE_<R>_<FIELD>``: ``order-events``, ``ARN`` -> ``NIMBUS_RESOURCE_ORDER_EVENTS_ARN``."""
    return "NIMBUS_RESOURCE_%s_%s" % (resource.upper().replace("-", "_"), field)


# --------------------------------------------------------------------------- message attributes


def _message_attributes(attrs):
    return {k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()}


# --------------------------------------------------------------------------- DynamoDB values <-> plain JSON


def _to_dynamo(v, path="item"):
    """Plain JSON-like value -> what boto3's TypeSerializer takes (floats as Decimal)."""
    if isinstance(v, bool) or v is None or isinstance(v, (str, int, decimal.Decimal)):
        return v
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise ValueError("%s: DynamoDB cannot store %r" % (path, v))
        return decimal.Decimal(repr(v))
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise TypeError("%s: map keys must be strings, got %r" % (path, k))
            out[k] = _to_dynamo(x, "%s.%s" % (path, k))
        return out
    if isinstance(v, (list, tuple)):
        return [_to_dynamo(x, "%s[%d]" % (path, i)) for i, x in enumerate(v)]
    if isinstance(v, (set, frozenset)):
        return {_to_dynamo(x, path) for x in v}
    raise TypeError("%s: cannot store a %s in a table (use JSON values)" % (path, _args.type_name(v)))


def _from_dynamo(v):
    """boto3's TypeDeserializer output -> plain values (numbers as int/float, sets as sorted lists)."""
    if isinstance(v, decimal.Decimal):
        if v.is_finite() and v == v.to_integral_value():
            return int(v)
        return float(v)
    if isinstance(v, dict):
        return {k: _from_dynamo(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_dynamo(x) for x in v]
    if isinstance(v, (set, frozenset)):
        items = [_from_dynamo(x) for x in v]
        try:
            return sorted(items)
        except TypeError:
            return items
    value = getattr(v, "value", None)  # boto3.dynamodb.types.Binary
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return v


_SERDE = None


def _serde():
    global _SERDE
    if _SERDE is None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
        _SERDE = (TypeSerializer(), TypeDeserializer())
    return _SERDE


def marshal(item: dict) -> dict:
    ser, _ = _serde()
    return {k: ser.serialize(v) for k, v in _to_dynamo(item).items()}


def unmarshal(item: dict) -> dict:
    _, de = _serde()
    return {k: _from_dynamo(de.deserialize(v)) for k, v in (item or {}).items()}


# --------------------------------------------------------------------------- clients


class _Client:
    _type = "?"
    _service = "?"
    _field = "NAME"

    def __init__(self, name, spec=None, function_config=None, environ=None, client=None):
        self._name = name
        self._spec = spec if isinstance(spec, dict) else {}
        self._environ = environ
        self._aws = client  # an injected boto3 client (tests); else the process-wide one
        self._native = None

    def _env(self):
        return os.environ if self._environ is None else self._environ

    def native(self, op=None):
        """The native name of the resource (env var, else function.json ``native``)."""
        if self._native is None:
            var = env_var(self._name, self._field)
            value = self._env().get(var)
            if not value:
                fallback = (self._spec.get("native") or {}).get(self._field.lower())
                value = fallback if isinstance(fallback, str) and fallback else None
            if not value:
                raise ResourceError(
                    "%s %r has no AWS %s: environment variable %s is not set (nimbus deploy sets it "
                    "for every resource a function uses)" % (self._type, self._name, self._field.lower(), var),
                    "NotConfigured", self._name, op)
            self._native = value
        return self._native

    def _call(self, op, method, **kwargs):
        client = self._aws if self._aws is not None else aws_client(self._service)
        try:
            return getattr(client, method)(**kwargs)
        except Exception as e:  # noqa: BLE001 - AWS errors become ResourceError, others pass
            err = _from_aws(e, self._name, op)
            if err is None:
                raise
            raise err from e

    def __repr__(self):
        return "<nimbus aws %s client %r>" % (self._type, self._name)


class TableClient(_Client):
    _type = "table"
    _service = "dynamodb"

    def _fields(self):
        return _args.key_fields(self._spec)

    def get(self, key):
        key = _args.check_key("table key", key, self._fields(), lambda f: f)
        out = self._call("get", "get_item", TableName=self.native("get"), Key=marshal(key), ConsistentRead=True)
        item = out.get("Item")
        return unmarshal(item) if item else None

    def put(self, item):
        item = _args.check_key("table item", item, self._fields(), lambda f: f)
        self._call("put", "put_item", TableName=self.native("put"), Item=marshal(item))
        return None

    def delete(self, key):
        key = _args.check_key("table key", key, self._fields(), lambda f: f)
        self._call("delete", "delete_item", TableName=self.native("delete"), Key=marshal(key))
        return None

    def _pages(self, op, method, limit, **kwargs):
        items, start = [], None
        while True:
            args = dict(kwargs)
            if start:
                args["ExclusiveStartKey"] = start
            if limit is not None:
                args["Limit"] = limit - len(items)
            out = self._call(op, method, **args)
            items.extend(unmarshal(i) for i in out.get("Items") or [])
            start = out.get("LastEvaluatedKey")
            if not start or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items

    def query(self, key, limit=None):
        fields = self._fields()
        key = _args.check_key("query key", key, fields, lambda f: f[:1])
        limit = _args.limit(limit)
        if fields:
            pk = fields[0]
        elif len(key) == 1:
            pk = next(iter(key))
        else:
            raise ValueError("query key must hold only the partition key (table %r declares no key)" % self._name)
        value = marshal({pk: key[pk]})[pk]
        return self._pages("query", "query", limit, TableName=self.native("query"),
                           KeyConditionExpression="#pk = :pk", ExpressionAttributeNames={"#pk": pk},
                           ExpressionAttributeValues={":pk": value})

    def scan(self, limit=None):
        limit = _args.limit(limit)
        return self._pages("scan", "scan", limit, TableName=self.native("scan"))


class QueueClient(_Client):
    _type = "queue"
    _service = "sqs"
    _field = "URL"

    def send(self, body, attributes=None, delay_seconds=0):
        body = _args.body(body)
        attrs = _trace.with_trace(_args.attributes(attributes))
        delay_seconds = _args.delay_seconds(delay_seconds)
        args = {"QueueUrl": self.native("send"), "MessageBody": body, "DelaySeconds": delay_seconds}
        if attrs:
            args["MessageAttributes"] = _message_attributes(attrs)
        return self._call("send", "send_message", **args)["MessageId"]


class TopicClient(_Client):
    _type = "topic"
    _service = "sns"
    _field = "ARN"

    def publish(self, body, attributes=None):
        body = _args.body(body)
        attrs = _trace.with_trace(_args.attributes(attributes))
        args = {"TopicArn": self.native("publish"), "Message": body}
        if attrs:
            args["MessageAttributes"] = _message_attributes(attrs)
        return self._call("publish", "publish", **args)["MessageId"]


class BucketClient(_Client):
    _type = "bucket"
    _service = "s3"

    def get(self, key):
        key = _args.bucket_key(key)
        try:
            out = self._call("get", "get_object", Bucket=self.native("get"), Key=key)
        except ResourceError as e:
            if e.code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        body = out["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def put(self, key, data, content_type=None):
        key = _args.bucket_key(key)
        raw = _args.bucket_data(data)
        content_type = _args.content_type(content_type)
        args = {"Bucket": self.native("put"), "Key": key, "Body": raw}
        if content_type:
            args["ContentType"] = content_type
        self._call("put", "put_object", **args)
        return None

    def delete(self, key):
        key = _args.bucket_key(key)
        self._call("delete", "delete_object", Bucket=self.native("delete"), Key=key)
        return None

    def list(self, prefix=""):
        prefix = _args.prefix(prefix)
        keys, token = [], None
        while True:
            args = {"Bucket": self.native("list"), "Prefix": prefix}
            if token:
                args["ContinuationToken"] = token
            out = self._call("list", "list_objects_v2", **args)
            keys.extend(o["Key"] for o in out.get("Contents") or [])
            token = out.get("NextContinuationToken") if out.get("IsTruncated") else None
            if not token:
                return keys


CLIENTS = {"table": TableClient, "queue": QueueClient, "topic": TopicClient, "bucket": BucketClient}


def make_client(name, spec, function_config=None, environ=None, client=None):
    """The neutral AWS client of resource ``name`` (``spec`` from function.json)."""
    cls = CLIENTS.get((spec or {}).get("type"))
    return cls(name, spec, function_config, environ, client) if cls is not None else None


def factory(name, spec, function_config=None):
    """``core.register_resource_factory`` hook for provider ``"aws"``."""
    return make_client(name, spec, function_config)


def register():
    core.register_resource_factory(PROVIDER, factory)


register()


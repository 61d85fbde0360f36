'use strict';
// Nimbus AWS resource clients (Node.js): `context.resources[name]` inside Lambda.
//
// table -> DynamoDB (through lib-dynamodb's DocumentClient: plain JS values in and out), queue -> SQS,
// topic -> SNS, bucket -> S3, with the AWS SDK for JavaScript v3 that the Node.js Lambda runtimes ship.
// The SDK is required and its clients are created lazily, once per process, and shared by every
// resource of that service. Endpoints, credentials and region come from the standard AWS
// environment/config (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, AWS_REGION/AWS_DEFAULT_REGION, ...).
//
// Native names come from the function's environment, set by lowering (crates/nimbus-aws/src/env.rs):
// NIMBUS_RESOURCE_<R>_{NAME,ARN,URL} with <R> the neutral name upper-cased and `-` as `_`; a non-empty
// string in the resource's function.json `native` block is the fallback.
//   table: NAME (DynamoDB table name)   queue: URL (SQS queue URL)
//   topic: ARN (SNS topic ARN)          bucket: NAME (S3 bucket name)
//
// Same API as the local clients (_nimbus/local_resources.js), with the same argument checks
// (_nimbus/args.js). Failures reported by AWS become ResourceError with `type` one of AccessDenied,
// NotFound, BadRequest, Conflict, Throttled, Unavailable, Internal (NotConfigured for a missing environment variable),
// `detail` AWS's message and `awsCode` AWS's error code. On require this module registers the
// factory of provider "aws". See docs/function-contract.md, "Resource clients".

const core = require('./core.js');
// argument checks shared by every provider's clients
const { checkKey, checkLimit, checkBody, checkAttributes, checkDelaySeconds, checkBucketKey, checkBucketData, checkContentType, checkPrefix } = require('./args.js');
const { withTrace } = require('./trace.js'); // the running invocation's traceparent goes with each message

const PROVIDER = 'aws';

// AWS refused or failed a resource operation: the shared core ResourceError (`type` the neutral
// error type, `detail` AWS's message) plus `awsCode`, AWS's own error code.
class ResourceError extends core.ResourceError {
  constructor(message, type = 'ResourceError', resource = null, op = null, options = undefined, awsCode = null) {
    super(message, type, resource, op, options);
    this.awsCode = awsCode;
  }
}

// ---------------------------------------------------------------------------- AWS errors -> neutral

const ERROR_TYPES = [
  ['AccessDenied', ['AccessDenied', 'AccessDeniedException', 'AuthorizationError', 'AuthorizationErrorException',
    'UnauthorizedOperation', 'UnrecognizedClientException', 'InvalidClientTokenId', 'ExpiredToken',
    'ExpiredTokenException', 'SignatureDoesNotMatch', 'InvalidAccessKeyId', 'AllAccessDisabled',
    'KMSAccessDeniedException', 'KMS.AccessDeniedException', 'Forbidden', 'CredentialsProviderError']],
  ['NotFound', ['ResourceNotFoundException', 'NoSuchBucket', 'NoSuchKey', 'NotFound', 'NotFoundException',
    'QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', 'NonExistentQueue', 'TableNotFoundException']],
  ['BadRequest', ['ValidationException', 'ValidationError', 'InvalidParameter', 'InvalidParameterValue',
    'InvalidParameterException', 'InvalidParameterValueException', 'InvalidAttributeValue', 'InvalidAttributeName',
    'InvalidMessageContents', 'SerializationException', 'InvalidArgument', 'InvalidRequest', 'MissingParameter',
    'MalformedInput', 'InvalidBucketName', 'InvalidKey', 'KeyTooLongError', 'EntityTooLarge', 'MessageTooLong',
    'ItemCollectionSizeLimitExceededException', 'UnsupportedOperation', 'AWS.SimpleQueueService.UnsupportedOperation',
    'BadRequest']],
  ['Conflict', ['ConditionalCheckFailedException', 'TransactionConflictException', 'OperationAborted', 'ResourceInUseException']],
  ['Throttled', ['ProvisionedThroughputExceededException', 'ThrottlingException', 'Throttling', 'ThrottledException',
    'RequestLimitExceeded', 'SlowDown', 'TooManyRequestsException', 'RequestThrottled', 'RequestThrottledException',
    'KMSThrottlingException']],
  ['Unavailable', ['ServiceUnavailable', 'ServiceUnavailableException', 'InternalFailure']],
];
const BY_CODE = new Map();
for (const [t, codes] of ERROR_TYPES) for (const c of codes) BY_CODE.set(c, t);

// AWS error code (and HTTP status) -> neutral error type.
function errorType(code, status) {
  const t = BY_CODE.get(code || '');
  if (t) return t;
  const s = Number(status);
  if (s === 401 || s === 403) return 'AccessDenied';
  if (s === 404) return 'NotFound';
  if (s === 409) return 'Conflict';
  if (s === 429) return 'Throttled';
  if (s === 503) return 'Unavailable';
  if (s >= 400 && s < 500) return 'BadRequest';
  return 'Internal';
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH']);

// An error thrown by the SDK -> ResourceError, or null when it is not an AWS error.
function fromAws(e, resource, op) {
  if (!e || typeof e !== 'object' || e instanceof core.NimbusError) return null;
  const meta = e.$metadata;
  if (meta && typeof meta === 'object' && (e.$fault || meta.httpStatusCode)) {
    const code = e.Code || e.name || '';
    const msg = e.message && e.message !== 'UnknownError' ? e.message : code;
    return new ResourceError(msg, errorType(code, meta.httpStatusCode), resource, op, { cause: e }, code || null);
  }
  if (e.name === 'CredentialsProviderError') return new ResourceError(e.message, 'AccessDenied', resource, op, { cause: e }, e.name);
  if (NETWORK_CODES.has(e.code) || e.name === 'TimeoutError') {
    return new ResourceError(e.message, 'Unavailable', resource, op, { cause: e }, e.code || e.name);
  }
  return null;
}

// ---------------------------------------------------------------------------- SDK clients (per process)

const SDK = {
  dynamodb: () => {
    const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
    const { DynamoDBDocumentClient } = require('@aws-sdk/lib-dynamodb');
    return DynamoDBDocumentClient.from(new DynamoDBClient(sdkConfig()), {
      marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
      unmarshallOptions: { wrapNumbers: false },
    });
  },
  sqs: () => new (require('@aws-sdk/client-sqs').SQSClient)(sdkConfig()),
  sns: () => new (require('@aws-sdk/client-sns').SNSClient)(sdkConfig()),
  s3: () => new (require('@aws-sdk/client-s3').S3Client)(sdkConfig()),
};
const clients = new Map();

function sdkConfig() {
  const region = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION;
  return region ? { region } : {};
}

// The process-wide SDK client of `service` (dynamodb is the DocumentClient), created on first use.
function awsClient(service) {
  let c = clients.get(service);
  if (!c) {
    try {
      c = SDK[service]();
    } catch (e) {
      if (e && e.code === 'MODULE_NOT_FOUND') {
        throw new core.ResourceUnavailableError(`the Nimbus AWS resource clients need the AWS SDK for JavaScript v3 ` +
          `(the AWS Lambda Node.js runtimes ship it): ${e.message.split('\n')[0]}`);
      }
      throw e;
    }
    clients.set(service, c);
  }
  return c;
}

// Forget (and destroy) the cached SDK clients (tests; a changed environment).
function resetClients() {
  for (const c of clients.values()) if (c && typeof c.destroy === 'function') c.destroy();
  clients.clear();
}

// Loads an SDK module's command class by name.
function command(service, name) {
  const mod = { dynamodb: '@aws-sdk/lib-dynamodb', sqs: '@aws-sdk/client-sqs', sns: '@aws-sdk/client-sns', s3: '@aws-sdk/client-s3' }[service];
  return require(mod)[name];
}

// ---------------------------------------------------------------------------- native names

// NIMBUS_RESOURCE_<R>_<FIELD>: ("order-events", "ARN") -> NIMBUS_RESOURCE_ORDER_EVENTS_ARN.
function envVar(resource, field) {
  return `NIMBUS_RESOURCE_${String(resource).toUpperCase().replace(/-/g, '_')}_${field}`;
}

// ---------------------------------------------------------------------------- message attributes

function messageAttributes(attrs) {
  const out = {};
  for (const [k, v] of Object.entries(attrs)) out[k] = { DataType: 'String', StringValue: v };
  return out;
}

// ---------------------------------------------------------------------------- clients

class Client {
  // options: { env } (default process.env), { client } (an injected SDK client, for tests)
  constructor(name, spec, options = {}) {
    this.name = name;
    this.spec = spec && typeof spec === 'object' ? spec : {};
    this.env = options.env || null;
    this.injected = options.client || null;
    this.nativeName = null;
  }

  // The native name of the resource (env var, else function.json `native`).
  native(op = null) {
    if (this.nativeName) return this.nativeName;
    const field = this.constructor.FIELD;
    const v = envVar(this.name, field);
    let value = (this.env || process.env)[v];
    if (!value) {
      const fallback = (this.spec.native || {})[field.toLowerCase()];
      value = typeof fallback === 'string' && fallback ? fallback : null;
    }
    if (!value) {
      throw new ResourceError(`${this.constructor.TYPE} ${JSON.stringify(this.name)} has no AWS ${field.toLowerCase()}: ` +
        `environment variable ${v} is not set (nimbus deploy sets it for every resource a function uses)`,
      'NotConfigured', this.name, op);
    }
    this.nativeName = value;
    return value;
  }

  async awsSend(op, commandName, input) {
    const service = this.constructor.SERVICE;
    const client = this.injected || awsClient(service);
    const Cmd = command(service, commandName);
    try {
      return await client.send(new Cmd(input));
    } catch (e) {
      throw fromAws(e, this.name, op) || e;
    }
  }
}

class TableClient extends Client {
  keyFields() {
    const key = this.spec.key;
    return Array.isArray(key) && key.every((k) => typeof k === 'string') ? key : [];
  }

  async get(key) {
    checkKey('table key', key, this.keyFields());
    const out = await this.awsSend('get', 'GetCommand', { TableName: this.native('get'), Key: key, ConsistentRead: true });
    return out.Item || null;
  }

  async put(item) {
    checkKey('table item', item, this.keyFields());
    await this.awsSend('put', 'PutCommand', { TableName: this.native('put'), Item: item });
    return null;
  }

  async delete(key) {
    checkKey('table key', key, this.keyFields());
    await this.awsSend('delete', 'DeleteCommand', { TableName: this.native('delete'), Key: key });
    return null;
  }

  async pages(op, commandName, limit, input) {
    const items = [];
    let start;
    for (;;) {
      const args = { ...input };
      if (start) args.ExclusiveStartKey = start;
      if (limit !== null) args.Limit = limit - items.length;
      const out = await this.awsSend(op, commandName, args);
      items.push(...(out.Items || []));
      start = out.LastEvaluatedKey;
      if (!start || (limit !== null && items.length >= limit)) return limit !== null ? items.slice(0, limit) : items;
    }
  }

  async query(key, limit = null) {
    const fields = this.keyFields();
    checkKey('query key', key, fields.slice(0, 1));
    const lim = checkLimit(limit);
    let pk;
    if (fields.length) pk = fields[0];
    else if (Object.keys(key).length === 1) pk = Object.keys(key)[0];
    else throw new RangeError(`query key must hold only the partition key (table ${JSON.stringify(this.name)} declares no key)`);
    return this.pages('query', 'QueryCommand', lim, {
      TableName: this.native('query'),
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': pk },
      ExpressionAttributeValues: { ':pk': key[pk] },
    });
  }

  async scan(limit = null) {
    const lim = checkLimit(limit);
    return this.pages('scan', 'ScanCommand', lim, { TableName: this.native('scan') });
  }
}
TableClient.TYPE = 'table';
TableClient.SERVICE = 'dynamodb';
TableClient.FIELD = 'NAME';

class QueueClient extends Client {
  async send(body, attributes = null, delaySeconds = 0) {
    const b = checkBody(body);
    const attrs = withTrace(checkAttributes(attributes));
    delaySeconds = checkDelaySeconds(delaySeconds);
    const input = { QueueUrl: this.native('send'), MessageBody: b, DelaySeconds: delaySeconds };
    if (Object.keys(attrs).length) input.MessageAttributes = messageAttributes(attrs);
    const out = await this.awsSend('send', 'SendMessageCommand', input);
    return out.MessageId;
  }
}
QueueClient.TYPE = 'queue';
QueueClient.SERVICE = 'sqs';
QueueClient.FIELD = 'URL';

class TopicClient extends Client {
  async publish(body, attributes = null) {
    const b = checkBody(body);
    const attrs = withTrace(checkAttributes(attributes));
    const input = { TopicArn: this.native('publish'), Message: b };
    if (Object.keys(attrs).length) input.MessageAttributes = messageAttributes(attrs);
    const out = await this.awsSend('publish', 'PublishCommand', input);
    return out.MessageId;
  }
}
TopicClient.TYPE = 'topic';
TopicClient.SERVICE = 'sns';
TopicClient.FIELD = 'ARN';

class BucketClient extends Client {
  async get(key) {
    checkBucketKey(key);
    let out;
    try {
      out = await this.awsSend('get', 'GetObjectCommand', { Bucket: this.native('get'), Key: key });
    } catch (e) {
      if (e instanceof ResourceError && (e.awsCode === 'NoSuchKey' || (e.awsCode === 'NotFound' && e.type === 'NotFound'))) return null;
      throw e;
    }
    return Buffer.from(await out.Body.transformToByteArray());
  }

  async put(key, data, contentType = null) {
    checkBucketKey(key);
    const raw = checkBucketData(data);
    contentType = checkContentType(contentType);
    const input = { Bucket: this.native('put'), Key: key, Body: raw };
    if (contentType) input.ContentType = contentType;
    await this.awsSend('put', 'PutObjectCommand', input);
    return null;
  }

  async delete(key) {
    checkBucketKey(key);
    await this.awsSend('delete', 'DeleteObjectCommand', { Bucket: this.native('delete'), Key: key });
    return null;
  }

  async list(prefix = '') {
    prefix = checkPrefix(prefix);
    const keys = [];
    let token;
    for (;;) {
      const input = { Bucket: this.native('list'), Prefix: prefix };
      if (token) input.ContinuationToken = token;
      const out = await this.awsSend('list', 'ListObjectsV2Command', input);
      for (const o of out.Contents || []) keys.push(o.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
      if (!token) return keys;
    }
  }
}
BucketClient.TYPE = 'bucket';
BucketClient.SERVICE = 's3';
BucketClient.FIELD = 'NAME';

const CLIENTS = { table: TableClient, queue: QueueClient, topic: TopicClient, bucket: BucketClient };

// The neutral AWS client of resource `name` (`spec` from function.json).
function makeClient(name, spec, options = {}) {
  const Cls = CLIENTS[spec && spec.type];
  return Cls ? new Cls(name, spec, options) : null;
}

function factory(name, spec) {
  return makeClient(name, spec);
}

function register() {
  core.registerResourceFactory(PROVIDER, factory);
}

register();

module.exports = {
  PROVIDER, ResourceError, errorType, fromAws, awsClient, resetClients, envVar, makeClient, factory, register,
  TableClient, QueueClient, TopicClient, BucketClient,
};

"""Argument checks shared by every provider's resource clients (Python).

``context.resources[name]`` has the same API on every provider (local runtime, AWS, ...), so the
checks of the arguments a handler passes, and their errors (``TypeError``/``ValueError`` and
messages), are the same too: they live here, once, and each provider's ``*_resources.py`` uses
them before it sends anything. Standard library only. See docs/function-contract.md,
"Resource clients".
"""

from __future__ import annotations

from . import core


def type_name(v):
    """The name of ``v``'s type in error messages (``"None"`` for None)."""
    return "None" if v is None else type(v).__name__


def check_key(what, key, fields, need):
    """A table key/item: a dict with string keys holding the declared key fields
    (``need(fields)`` of them)."""
    if not isinstance(key, dict):
        raise TypeError("%s must be a dict, got %s" % (what, type_name(key)))
    if not key:
        raise ValueError("%s must not be empty" % what)
    for k in key:
        if not isinstance(k, str):
            raise TypeError("%s field names must be strings, got %r" % (what, k))
    missing = [f for f in need(fields) if f not in key]
    if missing:
        raise ValueError("%s lacks the table's key field(s) %s (key: %s)"
                         % (what, ", ".join(repr(f) for f in missing), ", ".join(fields)))
    return key


def limit(limit):
    """A query/scan limit: a positive int or None."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError("limit must be a positive int or None, got %s" % type_name(limit))
    if limit < 1:
        raise ValueError("limit must be a positive int or None, got %d" % limit)
    return limit


def body(body):
    """A message body: a str as it is, a dict/list as JSON."""
    if isinstance(body, str):
        return body
    if isinstance(body, (dict, list)):
        return core.dumps(body)
    raise TypeError("body must be a str, or a dict/list (sent as JSON), got %s" % type_name(body))


def attributes(attributes):
    """Message attributes: None or a dict of str -> str (a copy)."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise TypeError("attributes must be a dict of str -> str, got %s" % type_name(attributes))
    for k, v in attributes.items():
        if not isinstance(k, str) or not k:
            raise TypeError("attribute names must be non-empty strings, got %r" % (k,))
        if not isinstance(v, str):
            raise TypeError("attribute %r must be a str, got %s (convert it with str())" % (k, type_name(v)))
    return dict(attributes)


def delay_seconds(delay_seconds):
    """A queue send delay: an int >= 0."""
    if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int):
        raise TypeError("delay_seconds must be an int, got %s" % type_name(delay_seconds))
    if delay_seconds < 0:
        raise ValueError("delay_seconds must be >= 0, got %d" % delay_seconds)
    return delay_seconds


def bucket_key(key):
    """A bucket object key: a non-empty str."""
    if not isinstance(key, str):
        raise TypeError("bucket key must be a str, got %s" % type_name(key))
    if not key:
        raise ValueError("bucket key must be a non-empty str")
    return key


def bucket_data(data):
    """Bucket object data: bytes-like as bytes, a str as UTF-8."""
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError("bucket data must be bytes or str, got %s" % type_name(data))


def content_type(content_type):
    """A bucket object content type: a str or None."""
    if content_type is not None and not isinstance(content_type, str):
        raise TypeError("content_type must be a str or None, got %s" % type_name(content_type))
    return content_type


def prefix(prefix):
    """A bucket list prefix: a str (None as "")."""
    if prefix is None:
        return ""
    if not isinstance(prefix, str):
        raise TypeError("prefix must be a str, got %s" % type_name(prefix))
    return prefix


def key_fields(spec):
    """A table's key field names from its ``function.json`` resource spec (``[]`` when absent)."""
    key = spec.get("key")
    if isinstance(key, list) and all(isinstance(k, str) for k in key):
        return key
    return []

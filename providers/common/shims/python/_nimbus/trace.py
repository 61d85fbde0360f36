"""W3C trace context across triggers, on every provider (docs/tracing.md).

Each invocation continues the trace its event carries — an HTTP request's ``traceparent``
header, or the ``traceparent`` attribute of the (first) message of a queue or topic batch, which
is taken out of the attributes the handler sees — or starts a new one. While the handler runs,
its context is ``current()`` (and ``context.traceparent``); the provider's queue and topic
clients add it to what they send (``with_trace``), so the function that receives it continues
the same trace. Standard library only.
"""

from __future__ import annotations

import contextvars
import os
import re

TRACEPARENT = "traceparent"
_FORMAT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_current: contextvars.ContextVar = contextvars.ContextVar("nimbus_traceparent", default=None)


def parse(value):
    """``(trace_id, span_id)`` of a valid ``traceparent``, else ``None`` (W3C: all-zero ids and
    version ``ff`` are invalid; version 00 has exactly four fields)."""
    m = _FORMAT.match((value or "").strip()) if isinstance(value, str) else None
    if not m:
        return None
    version, trace_id, span_id, _flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


def child(parent=None) -> str:
    """A new span's ``traceparent``: in ``parent``'s trace, else in a new trace."""
    ids = parse(parent)
    trace_id = ids[0] if ids else os.urandom(16).hex()
    span_id = os.urandom(8).hex()
    if span_id == "0" * 16:  # pragma: no cover - one chance in 2**64
        span_id = "0" * 15 + "1"
    return "00-%s-%s-01" % (trace_id, span_id)


def parent_of(event) -> str | None:
    """The context ``event`` carries; a message's ``traceparent`` attribute is removed from the
    attributes the handler gets (every message's, the first valid one wins)."""
    if not isinstance(event, dict):
        return None
    found = None
    if event.get("type") == "http":
        headers = event.get("headers") or {}
        value = headers.get(TRACEPARENT) if isinstance(headers, dict) else None
        return value if parse(value) else None
    for m in event.get("messages") or ():
        attrs = m.get("attributes") if isinstance(m, dict) else None
        if isinstance(attrs, dict) and TRACEPARENT in attrs:
            value = attrs.pop(TRACEPARENT)
            if found is None and parse(value):
                found = value
    return found


def enter(event):
    """Starts the invocation's span for ``event``: (its ``traceparent``, a token for ``leave``)."""
    value = child(parent_of(event))
    return value, _current.set(value)


def leave(token) -> None:
    _current.reset(token)


def current() -> str | None:
    """The running invocation's ``traceparent``."""
    return _current.get()


def with_trace(attrs: dict | None) -> dict:
    """``attrs`` plus the running invocation's ``traceparent`` (unless the handler set one)."""
    out = dict(attrs or {})
    value = current()
    if value and TRACEPARENT not in out:
        out[TRACEPARENT] = value
    return out

"""CORS in front of the handler on GCP, where API Gateway has no CORS setting.

The neutral algorithm of ``nimbus_graph::cors`` (docs/cors.md), on the policy the packager put in
``_nimbus/function.json`` (the ``cors`` of the function's http triggers; one per function):
a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered here
with 204 and never reaches the handler; any other response loses the handler's own
``Access-Control-*`` headers and gets the policy's for an allowed ``Origin``.
"""

ALL = "*"


def policy_of(config: dict):
    """The function's CORS policy, or None."""
    for t in config.get("triggers") or []:
        if isinstance(t, dict) and t.get("type") == "http" and isinstance(t.get("cors"), dict):
            return t["cors"]
    return None


def origin_matches(pattern: str, origin: str) -> bool:
    if pattern == ALL or pattern == origin:
        return True
    if "://*." not in pattern:
        return False
    scheme, rest = pattern.split("://*.", 1)
    prefix = scheme + "://"
    if not origin.startswith(prefix):
        return False
    host_port = origin[len(prefix):]
    if not host_port.endswith("." + rest):
        return False
    sub = host_port[: -len(rest) - 1]
    return bool(sub) and all(c.isascii() and (c.isalnum() or c in "-.") for c in sub)


def allows_origin(policy: dict, origin: str) -> bool:
    origin = origin.lower()
    return any(origin_matches(p, origin) for p in policy.get("origins") or [])


def _allow_origin_value(policy: dict, origin: str) -> str:
    if not policy.get("credentials") and ALL in (policy.get("origins") or []):
        return ALL
    return origin


def preflight_headers(policy: dict, origin: str, method: str, requested) -> list:
    out = [("vary", "Origin")]
    methods = policy.get("methods") or []
    allowed_headers = policy.get("allow_headers") or []
    wanted = [h.strip().lower() for h in (requested or "").split(",") if h.strip()]
    if (not allows_origin(policy, origin)
            or not (ALL in methods or method in methods)
            or not all(ALL in allowed_headers or h in allowed_headers for h in wanted)):
        return out
    out.append(("access-control-allow-origin", _allow_origin_value(policy, origin)))
    out.append(("access-control-allow-methods", ", ".join(methods)))
    if allowed_headers:
        out.append(("access-control-allow-headers", ", ".join(allowed_headers)))
    if policy.get("credentials"):
        out.append(("access-control-allow-credentials", "true"))
    if policy.get("max_age_secs") is not None:
        out.append(("access-control-max-age", str(policy["max_age_secs"])))
    return out


def actual_headers(policy: dict, origin: str) -> list:
    out = [("vary", "Origin")]
    if not allows_origin(policy, origin):
        return out
    out.append(("access-control-allow-origin", _allow_origin_value(policy, origin)))
    if policy.get("expose_headers"):
        out.append(("access-control-expose-headers", ", ".join(policy["expose_headers"])))
    if policy.get("credentials"):
        out.append(("access-control-allow-credentials", "true"))
    return out


def preflight(policy: dict, method: str, headers: dict):
    """The (body, status, headers) answer when the request is a preflight, else None."""
    origin = headers.get("origin")
    wanted = headers.get("access-control-request-method")
    if method.upper() != "OPTIONS" or not origin or not wanted:
        return None
    return b"", 204, preflight_headers(policy, origin, wanted, headers.get("access-control-request-headers"))


def on_response(policy: dict, request_headers: dict, pairs: list) -> list:
    """The handler's response headers with the policy's CORS headers in place of its own."""
    kept = [(k, v) for k, v in pairs if not k.lower().startswith("access-control-")]
    origin = request_headers.get("origin")
    if not origin:
        return kept
    added = actual_headers(policy, origin)
    vary = [v for k, v in kept if k.lower() == "vary"]
    kept = [(k, v) for k, v in kept if k.lower() != "vary"]
    if vary:
        added = [("vary", ", ".join(vary + ["Origin"])) if k == "vary" else (k, v) for k, v in added]
    return kept + added

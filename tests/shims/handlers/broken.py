"""A handler file that fails at import (load error)."""

raise ImportError("broken on purpose: missing dependency 'nonexistent_lib'")


def handler(event, context):  # pragma: no cover
    return None

"""Cloud Functions entry point of a Nimbus Python package: target ``nimbus_entry``.

Serves the ``http`` and the ``cloudevent`` signature types; the type recorded in
``_nimbus/function.json`` (``"gcp": {"signature": ...}``) is registered with
functions-framework when it is importable.
"""

import os as _os
import sys as _sys

_root = _os.path.dirname(_os.path.abspath(__file__))
if _root not in _sys.path:
    _sys.path.insert(0, _root)

from _nimbus import gcp as _gcp  # noqa: E402

_gcp.init()  # cold start: function.json + user handler


def nimbus_entry(request_or_event):
    return _gcp.entry(request_or_event)


_gcp.register_signature(nimbus_entry)

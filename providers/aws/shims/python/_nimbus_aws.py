"""AWS Lambda entry point of a Nimbus Python package (handler string ``_nimbus_aws.handler``)."""

import os as _os
import sys as _sys

_root = _os.path.dirname(_os.path.abspath(__file__))
if _root not in _sys.path:
    _sys.path.insert(0, _root)

from _nimbus import aws as _aws  # noqa: E402

_aws.init()  # cold start: function.json + user handler; failures are Lambda init errors

handler = _aws.handler

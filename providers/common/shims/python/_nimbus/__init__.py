"""Nimbus shim runtime (Python).

This package is copied into every Python function package as ``_nimbus/``:
``core.py`` (shared by every provider) plus the one adapter of the target
provider (``aws.py``, ``gcp.py``, ``azure.py`` or ``local_worker.py``).
It uses the standard library only (and, on GCP/Azure, the platform's own
``functions_framework`` / ``azure.functions`` where the platform provides them).
See docs/function-contract.md in the Nimbus repository.
"""

SHIM_VERSION = "1"

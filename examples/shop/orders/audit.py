"""audit-orders: one JSON line on stdout per change to the `orders` table.

    {"audit": "modify", "key": {"id": "..."}, "old_status": "placed", "new_status": "paid"}
"""

import json


def audit_line(event):
    old = event.get("old") or {}
    new = event.get("new") or {}
    return {
        "audit": event.get("action"),
        "key": event.get("key"),
        "old_status": old.get("status"),
        "new_status": new.get("status"),
    }


def handler(event, context):
    print(json.dumps(audit_line(event), sort_keys=True), flush=True)

"""nightly-report: every night, summarise the `orders` table into the `reports` bucket.

Writes `nightly/<YYYY-MM-DD>.json` (the date of the schedule tick, UTC):
    {"generated_at": "...", "orders": 42, "revenue": 1234.5, "by_status": {"paid": 40, "placed": 2}}
`revenue` is the sum of `amount` over paid orders (money actually collected).
"""

import json
from datetime import datetime, timezone


def summarise(orders, generated_at):
    by_status = {}
    revenue = 0.0
    for order in orders:
        status = order.get("status") or "unknown"
        by_status[status] = by_status.get(status, 0) + 1
        if status == "paid":
            try:
                revenue += float(order.get("amount") or 0)
            except (TypeError, ValueError):
                pass
    return {
        "generated_at": generated_at,
        "orders": len(orders),
        "revenue": round(revenue, 2),
        "by_status": dict(sorted(by_status.items())),
    }


def handler(event, context):
    generated_at = event.get("time") or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = summarise(context.resources["orders"].scan(), generated_at)
    key = f"nightly/{generated_at[:10]}.json"
    context.resources["reports"].put(
        key, json.dumps(summary, indent=2, sort_keys=True), content_type="application/json"
    )
    print(json.dumps({"report": key, "orders": summary["orders"], "revenue": summary["revenue"]}))

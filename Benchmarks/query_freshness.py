#!/usr/bin/env python3
"""Event-to-answer freshness of the query endpoint as a client sees it: POST a cart event of
a new user to eddy serve's ingest, then poll GET /v1/recommendations for that user until
the answer reflects it (no longer the cold user's popular items: a reason names the item,
"co-viewed with ITEM"), N times; prints p50/p99. A cart event bumps the user's cart
version, so the result cache (if on) is invalidated by the same commit that updates the
user's recent items.
Usage: query_freshness.py SERVE_PORT ITEM [N]"""
import sys

from freshness import measure, now_ms

if __name__ == "__main__":
    item = sys.argv[2]
    measure(int(sys.argv[1]), int(sys.argv[3]) if len(sys.argv) > 3 else 200,
            event=lambda user: {"user_id": user, "event_type": "cart", "item_id": item, "category": "c0", "price": 9.99, "ts": now_ms()},
            path=lambda user: f"/v1/recommendations?user_id={user}&k=5",
            shows=lambda status, state: status == 200 and any(r["reason"] == f"co-viewed with {item}" for r in state["items"]))

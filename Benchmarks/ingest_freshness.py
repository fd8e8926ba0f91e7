#!/usr/bin/env python3
"""End-to-end freshness of HTTP ingest as a client sees it: POST one event to eddy serve,
then poll GET /v1/users/{id}/features on the same server until the running `eddy run`
(Topologies/user-counts.yaml) shows it (per_user.count == 1), N times; prints p50/p99.
Usage: ingest_freshness.py SERVE_PORT [N]"""
import sys

from freshness import measure, now_ms

if __name__ == "__main__":
    measure(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 300,
            event=lambda user: {"user_id": user, "event_type": "view", "item_id": "i1", "ts": now_ms()},
            path=lambda user: f"/v1/users/{user}/features",
            shows=lambda status, state: status == 200 and state["features"].get("per_user", {}).get("count") == 1)

#!/usr/bin/env python3
"""Event-to-answer freshness of the query endpoint as a client sees it: POST a cart event of
a new user to eddy serve's ingest, then poll GET /v1/recommendations for that user until
the answer reflects it (no longer the cold user's popular items: a reason names the item,
"co-viewed with ITEM"), N times; prints p50/p99. A cart event bumps the user's cart
version, so the result cache (if on) is invalidated by the same commit that updates the
user's recent items.

Both requests go over kept-alive connections; the poll repeats every 0.5 ms.
Usage: query_freshness.py SERVE_PORT ITEM [N]"""
import http.client
import json
import sys
import time


def main():
    port, item = int(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    post = http.client.HTTPConnection("127.0.0.1", port)
    poll = http.client.HTTPConnection("127.0.0.1", port)
    run = int(time.time())
    samples = []
    for i in range(n):
        user = f"fresh-{run}-{i}"
        body = json.dumps({"user_id": user, "event_type": "cart", "item_id": item, "category": "c0", "price": 9.99,
                           "ts": int(time.time() * 1000)})
        started = time.perf_counter()
        post.request("POST", "/v1/events", body, {"Content-Type": "application/json"})
        answer = post.getresponse()
        answer.read()
        if answer.status != 202:
            sys.exit(f"POST answered {answer.status}")
        while True:
            poll.request("GET", f"/v1/recommendations?user_id={user}&k=5")
            reply = poll.getresponse()
            state = json.loads(reply.read())
            if reply.status == 200 and any(r["reason"] == f"co-viewed with {item}" for r in state["items"]):
                break
            if time.perf_counter() - started > 30:
                sys.exit(f"{user}'s answer did not reflect the event within 30 s: {reply.status} {state}")
            time.sleep(0.0005)
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"freshness over {n} events: p50 {pick(0.5):.0f} ms, p99 {pick(0.99):.0f} ms, max {samples[-1]:.0f} ms")


if __name__ == "__main__":
    main()

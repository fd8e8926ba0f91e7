#!/usr/bin/env python3
"""End-to-end freshness of HTTP ingest as a client sees it: POST one event to eddy serve,
then poll GET /v1/users/{id}/features on the same server until the running `eddy run`
(Topologies/user-counts.yaml) shows it (per_user.count == 1), N times; prints p50/p99.

Both requests go over kept-alive connections; the poll repeats every 0.5 ms.
Usage: ingest_freshness.py SERVE_PORT [N]"""
import http.client
import json
import sys
import time


def main():
    port = int(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    post = http.client.HTTPConnection("127.0.0.1", port)
    poll = http.client.HTTPConnection("127.0.0.1", port)
    run = int(time.time())
    samples = []
    for i in range(n):
        user = f"fresh-{run}-{i}"
        body = f'{{"user_id":"{user}","event_type":"view","item_id":"i1","ts":{int(time.time() * 1000)}}}'
        started = time.perf_counter()
        post.request("POST", "/v1/events", body, {"Content-Type": "application/json"})
        answer = post.getresponse()
        answer.read()
        if answer.status != 202:
            sys.exit(f"POST answered {answer.status}")
        while True:
            poll.request("GET", f"/v1/users/{user}/features")
            reply = poll.getresponse()
            state = json.loads(reply.read())
            if reply.status == 200 and state["features"].get("per_user", {}).get("count") == 1:
                break
            if time.perf_counter() - started > 30:
                sys.exit(f"{user} did not show within 30 s: {reply.status} {state}")
            time.sleep(0.0005)
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"freshness over {n} events: p50 {pick(0.5):.0f} ms, p99 {pick(0.99):.0f} ms, max {samples[-1]:.0f} ms")


if __name__ == "__main__":
    main()

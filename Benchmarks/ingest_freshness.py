#!/usr/bin/env python3
"""End-to-end freshness of HTTP ingest: POST one event to eddy serve, then poll Redis until
the running `eddy run` (user-counts) shows it in the user's hash, N times; prints p50/p99.

The time counted is what a client sees: from sending the POST to the state being readable.
Redis is read with plain RESP over a socket (no client library), every 0.5 ms.
Usage: ingest_freshness.py SERVE_PORT REDIS_PORT [N]"""
import http.client
import socket
import sys
import time


def resp(sock, *args):
    sock.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    data = b""
    while not data.endswith(b"\r\n") or (data.startswith(b"$") and data[1:2] != b"-" and data.count(b"\r\n") < 2):
        data += sock.recv(65536)
    if data.startswith(b"$-1"):
        return None
    return data.split(b"\r\n")[1] if data.startswith(b"$") else data


def main():
    serve_port, redis_port = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    http_conn = http.client.HTTPConnection("127.0.0.1", serve_port)
    redis = socket.create_connection(("127.0.0.1", redis_port))
    run = int(time.time())
    samples = []
    for i in range(n):
        user = f"fresh-{run}-{i}"
        body = f'{{"user_id":"{user}","event_type":"view","item_id":"i1","ts":{int(time.time() * 1000)}}}'
        started = time.perf_counter()
        http_conn.request("POST", "/v1/events", body, {"Content-Type": "application/json"})
        answer = http_conn.getresponse()
        answer.read()
        if answer.status != 202:
            sys.exit(f"POST answered {answer.status}")
        while resp(redis, b"HGET", f"user:{user}:counts".encode(), b"count") != b"1":
            if time.perf_counter() - started > 30:
                sys.exit(f"{user} did not show in Redis within 30 s")
            time.sleep(0.0005)
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"freshness over {n} events: p50 {pick(0.5):.0f} ms, p99 {pick(0.99):.0f} ms, max {samples[-1]:.0f} ms")


if __name__ == "__main__":
    main()

"""What both freshness scripts share: POST an event of a new user to eddy serve, then poll
a GET route on the same server until the answer shows it, N times; print p50/p99.
Both requests go over kept-alive connections; the poll repeats every 0.5 ms.
Between events the script pauses a random 0-200 ms: with a fixed pause every event left at
the same moment of `eddy run`'s commit cycle (the previous event's commit plus the pause), so
the figures measured one phase of the 100 ms interval instead of all of them."""
import http.client
import json
import random
import sys
import time


def measure(port, n, event, path, shows):
    """event(user) -> the JSON body to POST; path(user) -> the route to poll;
    shows(status, answer) -> whether the answer reflects the event."""
    post = http.client.HTTPConnection("127.0.0.1", port)
    poll = http.client.HTTPConnection("127.0.0.1", port)
    run = int(time.time())
    pause = random.Random(run)
    samples = []
    for i in range(n):
        user = f"fresh-{run}-{i}"
        started = time.perf_counter()
        post.request("POST", "/v1/events", json.dumps(event(user)), {"Content-Type": "application/json"})
        answer = post.getresponse()
        answer.read()
        if answer.status != 202:
            sys.exit(f"POST answered {answer.status}")
        while True:
            poll.request("GET", path(user))
            reply = poll.getresponse()
            state = json.loads(reply.read())
            if shows(reply.status, state):
                break
            if time.perf_counter() - started > 30:
                sys.exit(f"{user}: the answer did not reflect the event within 30 s: {reply.status} {state}")
            time.sleep(0.0005)
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(pause.uniform(0, 0.2))
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"freshness over {n} events: p50 {pick(0.5):.0f} ms, p99 {pick(0.99):.0f} ms, max {samples[-1]:.0f} ms")


def now_ms():
    return int(time.time() * 1000)

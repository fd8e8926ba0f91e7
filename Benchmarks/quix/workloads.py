#!/usr/bin/env python3
"""Quix Streams side of the Eddy benchmark: one Application per run.

Workloads (the Swift side implements the same semantics):
  a  passthrough: consume + JSON-decode each value; no state, no output.
  b  per-user last-20 item_ids, keyed by the message key (user_id); RocksDB state
     with its changelog, no output.
  c  decayed popularity per item: re-keyed by item_id through group_by (an internal
     repartition topic), state (score, last_ts) per item, latest rank per item written
     to the Redis sorted set popular:items by a BatchingSink once per checkpoint.
  d  the recommendation features of Topologies/recs.yaml that Quix is compared on:
     session features per user, decayed item popularity (half-life 1 h) and the co-view
     matrix (pairs of each user's last 20 distinct items within 30 min, decayed counts
     with a half-life of 7 d, the best 50 neighbours per item kept as each day closes),
     written to Redis under recs.yaml's keys and scores (recs.py has the operators).

The run reads the topic from the beginning with a fresh consumer group, stops once
exactly --events input events have been fully processed, does the final (forced)
checkpoint, and prints one JSON line to stdout. If no message is consumed for
--idle-timeout seconds before that, it exits 1 with a message on stderr.
"""
import argparse
import json
import math
import sys
import time
import warnings

# authlib (pulled in by confluent-kafka's schema-registry extra) warns on import, after
# installing its own "always" filter on import: import it first, then ignore.
with warnings.catch_warnings():
    try:
        import authlib.deprecate  # noqa: F401
    except ImportError:
        pass
    warnings.simplefilter("ignore")
    from quixstreams import Application
    from quixstreams.models import TopicConfig
    from quixstreams.sinks import BatchingSink, SinkBatch

HALF_LIFE_MS = 3_600_000
WEIGHTS = {"view": 1, "click": 3, "cart": 5, "purchase": 10}
LAST_N = 20
ZSET_KEY = "popular:items"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=["a", "b", "c", "d"], required=True)
    p.add_argument("--guarantee", choices=["at-least-once", "exactly-once"], default="at-least-once")
    p.add_argument("--topic", required=True)
    p.add_argument("--events", type=int, required=True, help="input events in the topic (known count)")
    p.add_argument("--broker", default="127.0.0.1:19092")
    p.add_argument("--redis-host", default="127.0.0.1")
    p.add_argument("--redis-port", type=int, default=16379)
    p.add_argument("--app-id", required=True, help="consumer group; use a fresh one per run")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--commit-interval", type=float, default=1.0, help="seconds between checkpoints")
    p.add_argument("--idle-timeout", type=float, default=60.0,
                   help="fail if no message is consumed for this many seconds (after assignment)")
    p.add_argument("--partitions", type=int, default=4,
                   help="partitions of the input topic (for the explicit topic config)")
    p.add_argument("--loglevel", default="WARNING")
    return p.parse_args(argv)


class RedisZSetSink(BatchingSink):
    """Writes the latest rank of each item in a checkpoint's batch as one pipelined ZADD."""

    def __init__(self, host: str, port: int, key: str = ZSET_KEY):
        super().__init__()
        self._host, self._port, self._key = host, port, key
        self._client = None

    def setup(self):
        import redis

        self._client = redis.Redis(host=self._host, port=self._port, socket_timeout=30.0)
        self._client.ping()

    def write(self, batch: SinkBatch):
        latest = {}
        for item in batch:  # offset order within one partition: the last value wins
            latest[item.value["item_id"]] = item.value["rank"]
        if not latest:
            return
        pipe = self._client.pipeline(transaction=False)
        # One ZADD per batch, chunked so a single command stays moderate in size.
        members = list(latest.items())
        for i in range(0, len(members), 10_000):
            pipe.zadd(self._key, dict(members[i:i + 10_000]))
        pipe.execute()


class Run:
    """Counts fully processed input events and stops the app at exactly N."""

    def __init__(self, app: Application, target: int):
        self.app = app
        self.target = target
        self.done = 0
        self.first = None  # perf_counter at the first record
        self.end = None    # perf_counter after the final (forced) checkpoint
        self.stats = {}

    def complete(self):
        return self.done >= self.target

    def started(self):
        if self.first is None:
            self.first = time.perf_counter()

    def finished(self):
        self.done += 1
        if self.done >= self.target:
            self.app.stop()  # the poll loop exits and does commit_checkpoint(force=True)


def build(args):
    app = Application(
        broker_address=args.broker,
        consumer_group=args.app_id,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        processing_guarantee=args.guarantee,
        loglevel=args.loglevel,
        consumer_extra_config={
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        },
        producer_extra_config={
            "linger.ms": 5,
        },
    )
    run = Run(app, args.events)

    topic = app.topic(
        args.topic,
        value_deserializer="json",
        key_deserializer="bytes",
        config=TopicConfig(
            num_partitions=args.partitions,
            replication_factor=1,
            extra_config={"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
        ),
    )
    sdf = app.dataframe(topic)
    # Each workload's first step also notes the first record's time (run.started), so
    # no extra per-record step is added for the measurement.

    if args.workload == "a":
        def passthrough(value):  # the value was JSON-decoded by the topic's deserializer
            run.started()
            run.finished()

        sdf = sdf.update(passthrough)

    elif args.workload == "b":
        def last_items(value, state):
            run.started()
            items = state.get("items")
            if items is None:
                items = []
            items.append(value["item_id"])
            if len(items) > LAST_N:
                del items[: len(items) - LAST_N]
            state.set("items", items)
            run.finished()

        sdf = sdf.update(last_items, stateful=True)

    elif args.workload == "d":
        import recs  # next to this file

        # Counts and stops the run itself: one input event becomes many messages.
        run = recs.build(app, sdf, args, app.stop)

    else:  # c
        def weighted(value):
            run.started()
            if value.get("event_type") in WEIGHTS:
                return True
            run.finished()  # weight 0: fully processed here, skipped
            return False

        def score(value, state):
            w = WEIGHTS[value["event_type"]]
            t = value["ts"]
            s = state.get("s")
            if s is None:
                sc, last = float(w), t
            else:
                sc, last = s
                if t >= last:
                    sc = sc * 2.0 ** (-(t - last) / HALF_LIFE_MS) + w
                    last = t
                else:
                    sc += w * 2.0 ** (-(last - t) / HALF_LIFE_MS)
            state.set("s", [sc, last])
            run.finished()
            return {"item_id": value["item_id"], "rank": math.log2(sc) + last / HALF_LIFE_MS}

        sdf = sdf.filter(weighted)
        sdf = sdf.group_by("item_id")
        sdf = sdf.apply(score, stateful=True)
        sdf.sink(RedisZSetSink(args.redis_host, args.redis_port))

    # Record when the final forced checkpoint (sinks flushed, changelogs produced,
    # offsets committed or transaction committed) has finished.
    ctx = app._processing_context
    orig_commit = ctx.commit_checkpoint

    def commit_checkpoint(force=False, revoking=False):
        orig_commit(force=force, revoking=revoking)
        if force and run.complete() and run.end is None:
            run.end = time.perf_counter()

    ctx.commit_checkpoint = commit_checkpoint
    return app, run


def main(argv=None):
    args = parse_args(argv)
    app, run = build(args)
    app.run(timeout=args.idle_timeout, collect=False)
    if not run.complete():
        print(
            f"quix workload {args.workload}: stopped short of {args.events} events: "
            f"no message for {args.idle_timeout}s (idle timeout)",
            file=sys.stderr,
        )
        return 1
    if run.end is None:
        run.end = time.perf_counter()
    secs = run.end - run.first
    print(json.dumps({
        "engine": "quix",
        "workload": args.workload,
        "guarantee": args.guarantee,
        "events": args.events,
        "processing_seconds": round(secs, 3),
        "events_per_second": round(args.events / secs, 1),
        **run.stats,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

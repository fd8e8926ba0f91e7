"""Workload d of the Quix side: the part of Topologies/recs.yaml that Quix Streams is
compared on, written as a Quix Streams application in its usual way (DataFrame steps,
per-key state, group_by for re-keying, BatchingSinks to Redis).

    clicks (keyed by user)
      ├─ pairs of the user's last 20 distinct items within 30 min ── group_by item ─┐
      │    (+ a "close" message per item when a day of event time closes)          └─ co-view per item ─> co_view:{item}
      ├─ interactions with a popularity weight ── group_by item ── decay (1 h) ────────────────────────> item:popularity
      └─ session windows per user (gap 30 min, grace 5 min) ──────────────────────────────────────────> session:{id}:features

Keys, members and scores are recs.yaml's, so Benchmarks/compare can compare the two
engines' Redis. Where the comparison looks, the rules are Eddy's (the operator sources
under Sources/EddyStreams/Internals/Operators/, the README's "Co-view: pairs" and "Top K
neighbours per item"):

- decay: Eddy's exact sums (DecayFunction): event time cut into frames of 32 half-lives,
  each record adds w·2^(t − end of its frame) as a 128-bit fixed-point number (88 bits
  after the point) to its frame's sum; an entry keeps its latest frame's sum and the one
  before; rank = log2(frame value) + frame end in half-lives. Python's ints and libm's
  exp2/log2 give the same bits, so a replay in either engine, whatever the order of the
  pairs, gives the same ranks. (A float `score·2^-Δt/h + w` would differ from it in the
  last bits, and by up to 2^-32 of the weight of records over 32 half-lives old.)
- pairs (PairsOperator): per user the last 20 distinct items, most recently arrived first,
  each with the largest time it was seen at; a record pairs its item with every kept item
  seen within 30 min, both ways. Eddy sends each pair as two records; here one message
  per target item carries the list of its new neighbours.
- top K (TopKPruning): pairs count per day of event time (epoch). Once the watermark —
  the least, over the source partitions, of the latest event time read — passes a day's
  end + 1 h grace, the day closes for every item that has pairs in it: its counts join
  the item's kept ones, only the 50 of largest rank stay (ties: the neighbour's name),
  and a pruned neighbour's total becomes the sum of the days still open (or it leaves
  Redis). Redis shows kept + open days. A pair more than 1 h behind its source
  partition's latest event time is late and skipped.
- sessions (SessionOperator): per user, records within 30 min of a session extend (or
  merge) it; one whose session would end over 5 min behind the partition's latest event
  time is late; a session closes once that time passes its end + 35 min.

What Quix has no tool for, and how it is done here:
- A watermark across partitions. Quix closes windows on one partition's (or one key's)
  latest timestamp, so a day could close before a lagging partition's pairs of it come
  in; Eddy's re-keyed tasks take the least over their upstream partitions. Here the
  process keeps each source partition's latest event time (`Watermarks`), which is
  valid because one process reads every partition (the benchmark's setup); with several
  processes a Quix application would need a grace long enough for the lag instead.
- Closing a day for items that see no more messages. Quix state is reached only through
  a message of its key, so when the watermark passes a day's close, the source step sends
  a "close" message to every item that had pairs that day (Eddy's close is a timer over
  its task's store). The items with pairs per open day are kept in the process too.
"""
import json
import math
import time

from quixstreams.context import message_context
from quixstreams.sinks import BatchingSink, SinkBatch

INTERACTIONS = ("view", "click", "cart", "purchase")
POPULARITY_WEIGHTS = {"view": 1.0, "click": 3.0, "cart": 5.0, "purchase": 10.0}
POPULARITY_HALF_LIFE_MS = 3_600_000
COVIEW_WEIGHTS = {"view": 1.0, "click": 2.0, "cart": 4.0, "purchase": 8.0}
COVIEW_HALF_LIFE_MS = 7 * 86_400_000
COVIEW_TTL_S = 7 * 86_400
PAIRS_LAST = 20
PAIRS_WITHIN_MS = 30 * 60_000
TOP_K = 50
EPOCH_MS = 86_400_000
TOP_K_GRACE_MS = 3_600_000
SESSION_GAP_MS = 30 * 60_000
SESSION_GRACE_MS = 5 * 60_000
SESSION_CLOSED_TTL_S = 3_600

FRAME_HALF_LIVES = 32.0
FRACTION_BITS = 88
UNIT = 2.0 ** FRACTION_BITS
PER_UNIT = 2.0 ** -FRACTION_BITS
PREVIOUS_FRAME = 2.0 ** -FRAME_HALF_LIVES


class Decay:
    """A decayed sum on event time, as Eddy's DecayFunction keeps it. An entry is
    [latest time, sum of the latest frame, sum of the frame before], the sums as ints in
    units of 2^-88 (stored as strings: the state's JSON holds 64-bit ints only)."""

    def __init__(self, half_life_ms):
        self.length = half_life_ms * FRAME_HALF_LIVES
        self.per_length = 1 / self.length
        self.per_half_life = 1 / half_life_ms

    def frame(self, t):
        return math.floor(t * self.per_length)

    def term(self, weight, t, frame):
        # Eddy: weight · exp2((t − (n + 1)·length) · (1/half-life)), truncated to 2^-88.
        return int(weight * math.exp2((t - (frame + 1) * self.length) * self.per_half_life) * UNIT)

    def add(self, entry, weight, t):
        """The entry (None: none yet) with one record of `weight` at time `t` added."""
        n = self.frame(t)
        if entry is None:
            return [t, self.term(weight, t, n), 0]
        last, now, before = entry
        latest_frame = n if t >= last else self.frame(last)
        if t > last:
            now, before = self._shifted(now, before, n - self.frame(last))
            last = t
        behind = latest_frame - n
        if behind == 0:
            now += self.term(weight, t, n)
        elif behind == 1:
            before += self.term(weight, t, n)
        # Two or more frames behind the latest: dropped, as in Eddy (under 2^-32 of its weight).
        return [last, now, before]

    def merge(self, entry, value):
        """Both entries' records in one (the order of merges does not matter)."""
        if entry is None:
            return list(value)
        last, now, before = entry
        t, value_now, value_before = value
        n = self.frame(t)
        if t > last:
            now, before = self._shifted(now, before, n - self.frame(last))
            last = t
        behind = self.frame(last) - n
        if behind == 0:
            now += value_now
            before += value_before
        elif behind == 1:
            before += value_now
        return [last, now, before]

    @staticmethod
    def _shifted(now, before, frames):
        """The sums moved on `frames` frames: the latest becomes the one before, or both go."""
        if frames <= 0:
            return now, before
        return 0, now if frames == 1 else 0

    def rank(self, entry):
        """log2 of the value at the entry's latest time plus that time in half-lives."""
        last, now, before = entry
        value = float(now) * PER_UNIT + float(before) * PER_UNIT * PREVIOUS_FRAME
        return math.log2(value) + (self.frame(last) + 1) * FRAME_HALF_LIVES

    @staticmethod
    def encode(entry):
        return [entry[0], str(entry[1]), str(entry[2])]

    @staticmethod
    def decode(stored):
        return None if stored is None else [stored[0], int(stored[1]), int(stored[2])]


POPULARITY = Decay(POPULARITY_HALF_LIFE_MS)
COVIEW = Decay(COVIEW_HALF_LIFE_MS)


def epoch_of(t):
    return t // EPOCH_MS


def close_time(epoch):
    """A day closes once the watermark is past this (Eddy's timer at end + grace)."""
    return (epoch + 1) * EPOCH_MS + TOP_K_GRACE_MS


class Progress:
    """When the run is complete: every input event has passed the source steps and every
    message they sent through a repartition topic has been processed."""

    def __init__(self, target, stop):
        self.target = target
        self.stop = stop
        self.first = None  # perf_counter at the first record
        self.end = None    # perf_counter after the final (forced) checkpoint
        self.sources = 0   # input events through every source step
        self.outstanding = 0  # repartition messages sent, not yet processed
        self.stats = dict(pair_messages=0, close_messages=0, days_closed=0, pruned=0, late_pairs=0, late_session_records=0)

    def started(self):
        if self.first is None:
            self.first = time.perf_counter()

    def sent(self, n):
        self.outstanding += n

    def source_done(self):
        self.sources += 1
        self._check()

    def received(self):
        self.outstanding -= 1
        self._check()

    def complete(self):
        return self.sources >= self.target and self.outstanding == 0

    def _check(self):
        if self.complete():
            self.stop()  # the poll loop exits and does commit_checkpoint(force=True)


class Watermarks:
    """Each source partition's latest event time, and their least (the watermark)."""

    def __init__(self, partitions):
        self.latest = [None] * partitions

    def see(self, partition, t):
        if self.latest[partition] is None or t > self.latest[partition]:
            self.latest[partition] = t
        return self.latest[partition]

    def stream_time(self, partition):
        return self.latest[partition]

    def least(self):
        return None if None in self.latest else min(self.latest)


def pairs_step(progress, watermarks, open_days):
    """Per user (the message key): the co-view pairs of each interaction, as one message
    per target item with its new neighbours, and the "close" messages of the days the
    watermark has passed. `open_days` maps each open day to the items with pairs in it."""

    def step(value, state):
        t = value["ts"]
        partition = message_context().partition
        stream_time = watermarks.see(partition, t)
        out = []
        # Days the watermark has passed close, in order, before this record's pairs (which
        # are of a later day: the record is at or past the watermark).
        least = watermarks.least()
        while open_days and least is not None:
            day = min(open_days)
            if close_time(day) >= least:
                break
            closing = [{"item_id": item, "close": day} for item in sorted(open_days.pop(day))]
            out.extend(closing)
            progress.stats["close_messages"] += len(closing)
        kind = value.get("event_type")
        item = value.get("item_id")
        if kind in INTERACTIONS and item is not None:
            items = state.get("items") or []  # [[item, time]], most recently arrived first
            others = [j for j, tj in items if j != item and abs(t - tj) <= PAIRS_WITHIN_MS]
            seen = max([t] + [tj for j, tj in items if j == item])
            items = [[item, seen]] + [e for e in items if e[0] != item]
            state.set("items", items[:PAIRS_LAST])
            if others and kind in COVIEW_WEIGHTS:
                if t < stream_time - TOP_K_GRACE_MS:
                    progress.stats["late_pairs"] += 2 * len(others)
                else:
                    pairs = [{"item_id": item, "others": others, "event_type": kind, "ts": t}]
                    pairs += [{"item_id": j, "others": [item], "event_type": kind, "ts": t} for j in others]
                    open_days.setdefault(epoch_of(t), set()).update(p["item_id"] for p in pairs)
                    out.extend(pairs)
                    progress.stats["pair_messages"] += len(pairs)
        progress.sent(len(out))
        return out

    return step


def coview_step(progress):
    """Per item: its neighbours' decayed counts with the best TOP_K kept as days close.
    State: "open" (days with counts not closed yet), "closed" (the last day closed),
    "n<day>" (the day's neighbours), "o<day>|<j>" (j's count of the day), "t|<j>" (j's
    total: kept + open days, what Redis shows), "kept" ({j: count of the closed days}).
    Returns the changes for Redis: {"item", "zadd": {j: rank}, "zrem": [j]}."""

    def add_pairs(value, state):
        t, day = value["ts"], epoch_of(value["ts"])
        closed = state.get("closed")
        if closed is not None and day <= closed:
            # Not reachable while days close on the watermark; Eddy counts it as late too.
            progress.stats["late_pairs"] += len(value["others"])
            return None
        weight = COVIEW_WEIGHTS[value["event_type"]]
        open_ = state.get("open") or []
        if day not in open_:
            state.set("open", sorted(open_ + [day]))
        names = None
        zadd = {}
        for j in value["others"]:
            key = f"o{day}|{j}"
            count = COVIEW.decode(state.get(key))
            if count is None:
                if names is None:
                    names = state.get(f"n{day}") or []
                names.append(j)
            state.set(key, COVIEW.encode(COVIEW.add(count, weight, t)))
            total = COVIEW.add(COVIEW.decode(state.get(f"t|{j}")), weight, t)
            state.set(f"t|{j}", COVIEW.encode(total))
            zadd[j] = COVIEW.rank(total)
        if names is not None:
            state.set(f"n{day}", names)
        return {"item": value["item_id"], "zadd": zadd, "zrem": []}

    def close(value, state):
        day = value["close"]
        open_ = state.get("open") or []
        if day not in open_:
            return None
        open_.remove(day)
        state.set("open", open_)
        state.set("closed", day)
        progress.stats["days_closed"] += 1
        kept = {j: COVIEW.decode(v) for j, v in (state.get("kept") or {}).items()}
        after = dict(kept)
        for j in state.get(f"n{day}") or []:
            key = f"o{day}|{j}"
            after[j] = COVIEW.merge(kept.get(j), COVIEW.decode(state.get(key)))
            state.delete(key)
        state.delete(f"n{day}")
        losers = []
        if len(after) > TOP_K:
            ranked = sorted(after, key=lambda j: (-COVIEW.rank(after[j]), j))
            losers = ranked[TOP_K:]
            for j in losers:
                del after[j]
        state.set("kept", {j: COVIEW.encode(v) for j, v in after.items()})
        zadd, zrem = {}, []
        for j in losers:
            total = None
            for other_day in open_:
                count = COVIEW.decode(state.get(f"o{other_day}|{j}"))
                if count is not None:
                    total = COVIEW.merge(total, count)
            if total is None:
                state.delete(f"t|{j}")
                zrem.append(j)
            else:
                state.set(f"t|{j}", COVIEW.encode(total))
                zadd[j] = COVIEW.rank(total)
        progress.stats["pruned"] += len(losers)
        return {"item": value["item_id"], "zadd": zadd, "zrem": zrem} if losers else None

    def step(value, state):
        changes = close(value, state) if "close" in value else add_pairs(value, state)
        progress.received()
        return changes

    return step


def popularity_step(progress):
    """Per item: its decayed popularity; returns {"item", "rank"}."""

    def step(value, state):
        entry = POPULARITY.add(POPULARITY.decode(state.get("p")), POPULARITY_WEIGHTS[value["event_type"]], value["ts"])
        state.set("p", POPULARITY.encode(entry))
        progress.received()
        return {"item": value["item_id"], "rank": POPULARITY.rank(entry)}

    return step


def format_number(x):
    """Eddy's formatNumber: whole numbers without a fraction, others shortest round-trip."""
    return str(int(x)) if x == math.floor(x) and abs(x) < 1e15 else repr(x)


def session_step(progress, watermarks):
    """Per user: open sessions and their features. Returns the Redis changes:
    {"hset": {key: fields}, "expire": [key], "delete": [key]}."""

    def new_session(t):
        return {"start": t, "end": t, "events": 0, "types": {}, "categories": {}, "items": [],
                "last": [None, None, ""], "cart": 0.0, "purchase": 0.0}

    def absorb(s, other):
        s["start"] = min(s["start"], other["start"])
        s["end"] = max(s["end"], other["end"])
        s["events"] += other["events"]
        if other["last"][0] is not None and (s["last"][0] is None or other["last"][:2] > s["last"][:2]):
            s["last"] = other["last"]
        s["cart"] += other["cart"]
        s["purchase"] += other["purchase"]
        for name in ("types", "categories"):
            for k, n in other[name].items():
                s[name][k] = s[name].get(k, 0) + n
        s["items"] = sorted(set(s["items"]) | set(other["items"]))

    def add(s, value, t, offset):
        s["events"] += 1
        kind, category, item, price = value.get("event_type"), value.get("category"), value.get("item_id"), value.get("price")
        if kind is not None:
            s["types"][kind] = s["types"].get(kind, 0) + 1
        if category is not None:
            s["categories"][category] = s["categories"].get(category, 0) + 1
        if item is not None:
            if item not in s["items"]:
                s["items"].append(item)
            if s["last"][0] is None or [t, offset] >= s["last"][:2]:
                s["last"] = [t, offset, item]
        if kind is not None and isinstance(price, (int, float)) and not isinstance(price, bool):
            if kind == "cart":
                s["cart"] += price
            if kind == "purchase":
                s["purchase"] += price

    def counts(c):
        return json.dumps(dict(sorted(c.items())), separators=(",", ":"), ensure_ascii=False)

    def features(user, s):
        top = min(s["categories"].items(), key=lambda kv: (-kv[1], kv[0]))[0] if s["categories"] else ""
        return {"session_id": f"{user}:{s['start']}", "start": str(s["start"]), "end": str(s["end"]),
                "duration_ms": str(s["end"] - s["start"]), "events": str(s["events"]), "event_counts": counts(s["types"]),
                "distinct_items": str(len(s["items"])), "category_counts": counts(s["categories"]), "top_category": top,
                "last_item": s["last"][2], "cart_value": format_number(s["cart"]), "purchase_value": format_number(s["purchase"])}

    def key(user, s):
        return f"session:{user}:{s['start']}:features"

    def step(value, state):
        t = value["ts"]
        user = value["user_id"]
        ctx = message_context()
        stream_time = watermarks.stream_time(ctx.partition)
        sessions = state.get("sessions") or []
        touched = [s for s in sessions if s["start"] - SESSION_GAP_MS <= t <= s["end"] + SESSION_GAP_MS]
        end = max([t] + [s["end"] for s in touched])
        changes = {"hset": {}, "expire": [], "delete": []}
        if end < stream_time - SESSION_GRACE_MS:
            progress.stats["late_session_records"] += 1
        else:
            merged = new_session(t)
            for s in touched:
                absorb(merged, s)
            add(merged, value, t, ctx.offset)
            # Sessions merged into one that starts elsewhere lose their keys.
            changes["delete"] = [key(user, s) for s in touched if s["start"] != merged["start"]]
            sessions = sorted([s for s in sessions if s not in touched] + [merged], key=lambda s: s["start"])
            changes["hset"][key(user, merged)] = features(user, merged)
        # Closed sessions leave the state; their keys stay an hour (Eddy: closed_ttl 1h).
        # Closed here when the user's next record comes, not by a timer: only the TTL's
        # start differs, which the comparison does not look at.
        closed = [s for s in sessions if s["end"] + SESSION_GAP_MS + SESSION_GRACE_MS < stream_time]
        changes["expire"] = [key(user, s) for s in closed]
        state.set("sessions", [s for s in sessions if s not in closed])
        progress.source_done()  # the last source step (see build)
        return changes

    return step


class RedisSink(BatchingSink):
    """Writes a checkpoint's changes with one pipeline; `render(values, pipe)` adds the
    commands for the batch's values in offset order."""

    def __init__(self, host, port, render):
        super().__init__()
        self._host, self._port, self._render = host, port, render
        self._client = None

    def setup(self):
        import redis

        self._client = redis.Redis(host=self._host, port=self._port, socket_timeout=30.0)
        self._client.ping()

    def write(self, batch: SinkBatch):
        pipe = self._client.pipeline(transaction=False)
        self._render([item.value for item in batch], pipe)
        pipe.execute()


def render_popularity(values, pipe):
    latest = {}
    for v in values:
        latest[v["item"]] = v["rank"]
    if latest:
        pipe.zadd("item:popularity", latest)


def render_coview(values, pipe):
    # The last change per (item, neighbour) wins: a rank, or None for a removal.
    latest = {}
    for v in values:
        members = latest.setdefault(v["item"], {})
        members.update(v["zadd"])
        members.update((j, None) for j in v["zrem"])
    for item, members in latest.items():
        key = f"co_view:{item}"
        scores = {j: r for j, r in members.items() if r is not None}
        removed = [j for j, r in members.items() if r is None]
        if scores:
            pipe.zadd(key, scores)
        if removed:
            pipe.zrem(key, *removed)
        pipe.expire(key, COVIEW_TTL_S)


def render_sessions(values, pipe):
    fields, expire, delete = {}, set(), set()
    for v in values:
        for key in v["delete"]:
            fields.pop(key, None)
            delete.add(key)
        for key, f in v["hset"].items():
            fields[key] = f
            delete.discard(key)
        expire.update(v["expire"])
    for key in delete:
        pipe.delete(key)
    for key, f in fields.items():
        pipe.hset(key, mapping=f)
    for key in expire - delete:
        pipe.expire(key, SESSION_CLOSED_TTL_S)


def build(app, sdf, args, stop):
    """Adds workload d's steps to the source dataframe `sdf`; returns its Progress."""
    progress = Progress(args.events, stop)
    watermarks = Watermarks(args.partitions)
    open_days = {}

    def note(value):
        progress.started()
        watermarks.see(message_context().partition, value["ts"])

    sdf = sdf.update(note)
    # Branches run in the order they are added, each on the same message: the session
    # step comes last and counts the event as through every source step.
    coview = sdf.apply(pairs_step(progress, watermarks, open_days), stateful=True, expand=True)
    coview = coview.group_by("item_id", name="co_view")
    coview = coview.apply(coview_step(progress), stateful=True).filter(lambda v: v is not None)
    coview.sink(RedisSink(args.redis_host, args.redis_port, render_coview))

    popular = sdf.filter(lambda v: v.get("event_type") in POPULARITY_WEIGHTS and v.get("item_id") is not None)
    popular = popular.update(lambda v: progress.sent(1))
    popular = popular.group_by("item_id", name="popularity")
    popular = popular.apply(popularity_step(progress), stateful=True)
    popular.sink(RedisSink(args.redis_host, args.redis_port, render_popularity))

    sessions = sdf.apply(session_step(progress, watermarks), stateful=True)
    sessions.sink(RedisSink(args.redis_host, args.redis_port, render_sessions))
    return progress

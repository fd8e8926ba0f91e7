"""The runs behind Benchmarks/compare: Eddy and Quix Streams over the same topic, the
ceilings, and RESULTS.md plus results.svg. Started by Benchmarks/compare, which builds
Eddy, installs Quix into Benchmarks/.venv and starts a fresh broker and Redis.

Workload d (Topologies/recs.yaml) runs on a topic of its own, usually with fewer events
(Quix runs it at a few thousand events/s), and its own rows: Eddy with the shipped
recs.yaml and with recs.yaml without its model node, Quix with workloads.py --workload d.
Run alone (--workloads d), it rewrites only its section of RESULTS.md."""
import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import time
import urllib.request
from importlib.metadata import version

# RESULTS.md from this heading on is not compare's: it is kept when compare rewrites the file.
KEPT_SECTION = "## Old and new binary side by side"

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOPIC = "compare-clicks"
D_TOPIC = "compare-clicks-d"
RECS = os.path.join(ROOT, "Topologies", "recs.yaml")
WORKLOADS = {
    "a": ("passthrough (consume + decode)", "passthrough.yaml"),
    "b": ("last 20 items per user", "recent-items.yaml"),
    "c": ("decayed item popularity, re-keyed, to a Redis zset", "popularity.yaml"),
}  # topology files under Benchmarks/topologies (an absolute path stands for itself)
D_TITLE = "the recommendation topology, recs.yaml"
# Workload d's Eddy rows: the shipped recs.yaml, and the same without its model node.
D_ENGINES = {"Eddy, 1 thread, recs.yaml": True, "Eddy, 1 thread, recs.yaml without model": False}
GUARANTEES = {"at-least-once": "at_least_once", "exactly-once": "exactly_once"}
ENGINES = ["Quix Streams", "Eddy, 1 thread", "Eddy, 2 threads", "Eddy, 2 processes"]
TICKS = os.sysconf("SC_CLK_TCK")


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


class Measured:
    """Runs processes to their end and keeps their CPU time and peak RSS (wait4)."""

    def __init__(self):
        self.cpu = 0.0
        self.rss_kb = 0

    def start(self, args, **kw):
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

    def wait(self, process, timeout=900):
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                self.cpu += usage.ru_utime + usage.ru_stime
                self.rss_kb = max(self.rss_kb, usage.ru_maxrss)
                return process.stdout.read(), process.stderr.read()
            time.sleep(0.05)
        process.kill()
        raise SystemExit(f"{process.args[:3]} did not finish within {timeout} s")


def broker_cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="eddy-compare-")
        self.rows = []  # dicts: workload, guarantee, engine, events_per_second, cpu_per_million, rss_mb, broker_cpu, zset
        self.runs = 0
        self.workloads = WORKLOADS

    def redis(self, *cmd):
        return sh("redis-cli", "-p", str(self.args.redis_port), *cmd)

    def events(self, workload):
        return self.args.d_events if workload == "d" else self.args.events

    def topic_of(self, workload):
        return D_TOPIC if workload == "d" else TOPIC

    def broker(self):
        return re.search(r"bootstrap_servers: *(\S+)", open(self.args.config).read()).group(1)

    def recs_topology(self, app, model):
        """Topologies/recs.yaml on workload d's topic, as application `app`; without its
        model node (the last node, from its `- name: model` line to the end) if not `model`."""
        text = open(RECS).read()
        if not model:
            cut = text.index("\n  - name: model\n")
            assert "\n  - name:" not in text[cut + 1:], "the model node is no longer recs.yaml's last: cut it another way"
            text = text[:cut + 1]
        text = re.sub(r"^application: .*", f"application: {app}", text, flags=re.M)
        text = text.replace("topic: clicks", f"topic: {D_TOPIC}")
        path = os.path.join(self.work, f"{app}.yaml")
        open(path, "w").write(text)
        return path

    def recs_state(self):
        """What workload d's cross-check compares, read from Redis: item:popularity, every
        co_view:{item} zset (not co_view:totals, which Quix does not keep) and every
        session:{id}:features hash."""
        import redis  # in Benchmarks/.venv, which runs this script

        r = redis.Redis(port=self.args.redis_port, decode_responses=True)
        state = {"item:popularity": dict(r.zrange("item:popularity", 0, -1, withscores=True))}
        for pattern, read in (("co_view:*", "zrange"), ("session:*:features", "hgetall")):
            keys = [k for k in r.scan_iter(match=pattern, count=10_000) if k != "co_view:totals"]
            pipe = r.pipeline(transaction=False)
            for k in keys:
                pipe.zrange(k, 0, -1, withscores=True) if read == "zrange" else pipe.hgetall(k)
            values = pipe.execute()
            state[pattern] = {k: dict(v) for k, v in zip(keys, values)}
        return state

    def zset(self):
        out = self.redis("ZRANGE", "popular:items", "0", "-1", "WITHSCORES").split()
        return {out[i]: float(out[i + 1]) for i in range(0, len(out) - 1, 2)}

    def runtime_config(self, guarantee, threads, name):
        text = open(self.args.config).read()
        text = re.sub(r"commit_interval_ms: .*", "commit_interval_ms: 1000", text)
        text = re.sub(r"guarantee: .*", f"guarantee: {GUARANTEES[guarantee]}", text)
        text = re.sub(r"threads: .*", f"threads: {threads}", text)
        path = os.path.join(self.work, f"{name}-runtime.yaml")
        open(path, "w").write(text)
        return path

    def topology(self, workload, app):
        text = open(os.path.join(HERE, "topologies", self.workloads[workload][1])).read()
        text = re.sub(r"^application: .*", f"application: {app}", text, flags=re.M)
        text = text.replace("topic: clicks", f"topic: {TOPIC}")
        path = os.path.join(self.work, f"{app}.yaml")
        open(path, "w").write(text)
        return path

    def record(self, workload, guarantee, engine, events_per_second, measured, broker_seconds, stats=None):
        events = self.events(workload)
        row = dict(workload=workload, guarantee=guarantee, engine=engine, events_per_second=events_per_second,
                   cpu_per_million=measured.cpu / events * 1e6, rss_mb=measured.rss_kb / 1024,
                   broker_cpu_per_million=broker_seconds / events * 1e6,
                   zset=self.zset() if workload == "c" else None,
                   recs=self.recs_state() if workload == "d" else None, stats=stats or {})
        self.rows.append(row)
        print(f"  {workload} {guarantee:13} {engine:18} {events_per_second:>12,.0f} events/s  "
              f"{row['cpu_per_million']:6.2f} CPU-s/M  {row['rss_mb']:6.0f} MB  broker {row['broker_cpu_per_million']:5.2f} CPU-s/M",
              flush=True)

    def single(self, workload, guarantee, engine, args, rate):
        """Runs one process to its end; `rate` takes its JSON summary and returns events/s,
        or None when the run fell short."""
        measured = Measured()
        before = broker_cpu(self.args.broker_pid)
        p = measured.start(args)
        out, err = measured.wait(p)
        result = json.loads(out.strip().splitlines()[-1]) if p.returncode == 0 else {}
        events_per_second = rate(result) if result else None
        if events_per_second is None:
            raise SystemExit(f"{engine}, {workload} {guarantee}: failed or fell short:\n{err[-3000:]}")
        self.record(workload, guarantee, engine, events_per_second, measured, broker_cpu(self.args.broker_pid) - before, result)

    def quix(self, workload, guarantee):
        self.runs += 1
        app = f"quix-{workload}-{guarantee}-{self.runs}"
        self.single(workload, guarantee, "Quix Streams",
                    [self.args.python, os.path.join(HERE, "quix", "workloads.py"), "--workload", workload,
                     "--guarantee", guarantee, "--topic", self.topic_of(workload), "--events", str(self.events(workload)),
                     "--broker", self.broker(), "--redis-port", str(self.args.redis_port), "--app-id", app,
                     "--state-dir", os.path.join(self.work, app), "--commit-interval", "1.0"],
                    lambda result: result["events_per_second"])

    def eddy(self, workload, guarantee, threads=1, binary=None, name="Eddy", topology=None, engine=None):
        """One `eddy run --until-caught-up` of `binary` (default: --eddy), recorded as
        engine "NAME, N thread(s)" (or `engine`); `topology(app)` gives the file."""
        self.runs += 1
        app = f"eddy-{workload}-{guarantee}-{threads}t-{self.runs}"
        self.single(workload, guarantee, engine or f"{name}, {threads} thread{'s' if threads > 1 else ''}",
                    [binary or self.args.eddy, "run", (topology or (lambda a: self.topology(workload, a)))(app),
                     "--config", self.runtime_config(guarantee, threads, app),
                     "--state-dir", os.path.join(self.work, app), "--metrics-port", "0", "--until-caught-up", "--json"],
                    lambda result: result["records_per_second"] if result.get("records_in") == self.events(workload) else None)

    def eddy_two_processes(self, workload, guarantee):
        """Two processes in one group. --until-caught-up is per process (it waits for every
        source partition's end), so here the harness watches both processes' metrics: the
        run is timed from the first record to the first commit of each process after both
        together consumed every event (up to one commit interval later), then both get
        SIGTERM (they commit and stop). The zset cross-check then shows
        whether anything was left behind."""
        self.runs += 1
        app = f"eddy-{workload}-{guarantee}-2p-{self.runs}"
        topology = self.topology(workload, app)
        measured = Measured()
        before = broker_cpu(self.args.broker_pid)
        ports = [19501 + i for i in range(2)]
        processes = [measured.start([self.args.eddy, "run", topology, "--config", self.runtime_config(guarantee, 1, f"{app}-{i}"),
                                     "--state-dir", os.path.join(self.work, f"{app}-{i}"), "--metrics-port", str(port)])
                     for i, port in enumerate(ports)]

        def metric(name):
            """The metric per process (0 while a process does not answer yet)."""
            values = []
            for port in ports:
                try:
                    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
                except OSError:
                    text = ""
                m = re.search(rf"^{name}\{{[^}}]*\}} (\d+)", text, re.M)
                values.append(int(m.group(1)) if m else 0)
            return values

        first = done = None
        deadline = time.time() + 600
        while done is None and time.time() < deadline:
            n = sum(metric("eddy_records_in_total"))
            now = time.time()
            if n > 0 and first is None:
                first = now
            if n >= self.args.events:
                done = now
            if any(p.poll() is not None for p in processes):
                break
            time.sleep(0.02)
        if done is None:
            for p in processes:
                p.kill()
            logs = "\n".join(measured.wait(p)[1][-2000:] for p in processes)
            raise SystemExit(f"eddy {workload} {guarantee} 2 processes did not consume every event:\n{logs}")
        # Done means committed: wait for a commit after the last record in each process.
        commits = metric("eddy_commits_total")
        while time.time() < done + 5 and any(a <= b for a, b in zip(metric("eddy_commits_total"), commits)):
            time.sleep(0.02)
        done = time.time()
        time.sleep(2.5)  # two more commit intervals: re-keyed records reach their store and Redis
        for p in processes:
            p.terminate()
        for p in processes:
            measured.wait(p)
        self.record(workload, guarantee, "Eddy, 2 processes", self.args.events / (done - first), measured,
                    broker_cpu(self.args.broker_pid) - before)

    def ceilings(self):
        consume = json.loads(sh(self.args.eddy, "consume-ceiling", "--topic", TOPIC, "--config", self.args.config, "--json").strip().splitlines()[-1])
        writes = json.loads(sh(self.args.eddy, "write-ceilings", "--records", str(self.args.events), "--config", self.args.config, "--json").strip().splitlines()[-1])
        self.ceiling = dict(consume=consume["records_per_second"], rocksdb=writes["rocksdb_puts_per_second"],
                            redis=writes["redis_writes_per_second"])
        print(f"ceilings: consume {self.ceiling['consume']:,.0f} records/s, RocksDB {self.ceiling['rocksdb']:,.0f} puts/s, "
              f"Redis {self.ceiling['redis']:,.0f} writes/s", flush=True)

    def run(self):
        if self.args.workloads != "d":
            print(f"generating {self.args.events:,} events into {TOPIC} (4 partitions)…", flush=True)
            sh(self.args.eddy, "generate", "--events", str(self.args.events), "--topic", TOPIC, "--partitions", "4", "--config", self.args.config)
            self.ceilings()
            for workload in WORKLOADS:
                for guarantee in GUARANTEES:
                    for step in (lambda: self.quix(workload, guarantee), lambda: self.eddy(workload, guarantee, 1),
                                 lambda: self.eddy(workload, guarantee, 2), lambda: self.eddy_two_processes(workload, guarantee)):
                        self.redis("FLUSHALL")
                        step()
            self.cross_check()
        if "d" in self.args.workloads:
            self.run_d()
        if self.args.workloads == "d":
            self.write_d_only()
        else:
            self.write()

    def run_d(self):
        """Workload d: Quix, Eddy with recs.yaml and Eddy with recs.yaml without its model,
        each from an empty Redis, under both guarantees; then the cross-check."""
        events = self.args.d_events
        print(f"workload d: generating {events:,} events into {D_TOPIC} (4 partitions)"
              + (f"; {events:,} is d's default, fewer than the others' (Quix Streams runs d at ~1–2k events/s): "
                 "give EVENTS to change it" if self.args.d_default else "") + "…", flush=True)
        sh(self.args.eddy, "generate", "--events", str(events), "--topic", D_TOPIC, "--partitions", "4", "--config", self.args.config)
        for guarantee in GUARANTEES:
            steps = [lambda: self.quix("d", guarantee)]
            steps += [lambda engine=engine, model=model: self.eddy("d", guarantee, engine=engine,
                                                                   topology=lambda app: self.recs_topology(app, model))
                      for engine, model in D_ENGINES.items()]
            for step in steps:
                self.redis("FLUSHALL")
                step()
        self.cross_check_d()

    def cross_check_d(self, reference_engine="Quix Streams"):
        """Every workload-d run must leave in Redis what Quix's exactly-once run left: the
        same members of item:popularity, the same co_view:{item} keys each with the same
        neighbours, ranks within 1e-9 of each other (absolute, on ranks of ~490,000 and
        ~2,900: values within 7e-10 of each other, relative), and the same
        session:{id}:features hashes, field for field. Both engines sum decays exactly
        (fixed point), so the ranks are expected to be equal to the bit."""
        reference = self.find("d", "exactly-once", reference_engine)["recs"]
        for r in self.rows:
            if r["recs"] is None:
                continue
            state, worst = r["recs"], 0.0

            def differing(a, b):
                """Members in one zset only; the largest rank difference of the others."""
                nonlocal worst
                worst = max([worst] + [abs(a[k] - b[k]) for k in a.keys() & b.keys()])
                return len(a.keys() ^ b.keys())

            problems = []
            n = differing(state["item:popularity"], reference["item:popularity"])
            if n:
                problems.append(f"{n:,} item:popularity members")
            ours, theirs = state["co_view:*"], reference["co_view:*"]
            if ours.keys() != theirs.keys():
                problems.append(f"{len(ours.keys() ^ theirs.keys()):,} co_view keys")
            members = [differing(ours[k], theirs[k]) for k in ours.keys() & theirs.keys()]
            if any(members):
                problems.append(f"{sum(members):,} neighbours in {sum(1 for m in members if m):,} co_view zsets")
            ours, theirs = state["session:*:features"], reference["session:*:features"]
            n = len(ours.keys() ^ theirs.keys()) + sum(ours[k] != theirs[k] for k in ours.keys() & theirs.keys())
            if n:
                problems.append(f"{n:,} sessions")
            verdict = "same" if not problems else "DIFFERS: " + ", ".join(problems) + " differ"
            if worst > 1e-9:
                verdict = ("DIFFERS: " if not problems else verdict + "; ") + f"ranks up to {worst:.2g} apart"
            neighbours = sum(len(z) for z in state["co_view:*"].values())
            r["check"] = verdict + (
                f" ({len(state['item:popularity']):,} items, {len(state['co_view:*']):,} co-view zsets with {neighbours:,} "
                f"neighbours, {len(state['session:*:features']):,} sessions; max |Δ rank| {worst:.2g})")

    def cross_check(self, reference_engine="Quix Streams"):
        """Every workload-c run must leave the same popularity in Redis as the first
        exactly-once run of `reference_engine` (scores within 1e-9: sums in another order
        round differently)."""
        reference = next(r["zset"] for r in self.rows if r["workload"] == "c" and r["engine"] == reference_engine and r["guarantee"] == "exactly-once")
        for r in self.rows:
            if r["zset"] is None:
                continue
            z = r["zset"]
            missing = len(reference.keys() - z.keys()) + len(z.keys() - reference.keys())
            worst = max((abs(z[k] - reference[k]) for k in reference.keys() & z.keys()), default=math.inf)
            r["check"] = "same" if missing == 0 and worst <= 1e-9 else f"DIFFERS ({missing} members differ, max |Δ| {worst:.2g})"
            r["check_detail"] = (len(z), worst)

    def find(self, workload, guarantee, engine):
        return next(r for r in self.rows if (r["workload"], r["guarantee"], r["engine"]) == (workload, guarantee, engine))

    def d_section(self):
        """Workload d's section of RESULTS.md and its lines for the Targets list."""
        events = self.args.d_events
        command = f"Benchmarks/compare --workloads d {events}" if self.args.workloads == "d" else f"Benchmarks/compare {self.args.events}"
        quix_stats = self.find("d", "exactly-once", "Quix Streams")["stats"]
        lines = [f"## (d) {D_TITLE}", "",
                 f"Generated by `{command}` on {datetime.date.today().isoformat()}, in one run of its own: Eddy "
                 f"`{sh('git', '-C', ROOT, 'rev-parse', '--short', 'HEAD').strip()}`, Quix Streams {version('quixstreams')}, the "
                 f"same broker and Redis (fresh for the run). Input: {events:,} generated click events (`eddy generate`, "
                 f"10,000 users, 20,000 items: about {events / 2150:.0f} hours of event time) in a topic of its own, 4 partitions"
                 + (f" — d's default count, smaller than the others' 1M because Quix Streams runs it at ~1–2k events/s" if self.args.d_default else "")
                 + ". Columns as above; every run is one process with one stream thread.", "",
                 "- **Eddy, recs.yaml**: `Topologies/recs.yaml` as shipped — sessions, recent items, item popularity and "
                 "trending, popularity per category, user categories, co-view (top 50 per item) and its totals, cart versions "
                 "and the online model (one task re-keyed to one partition).",
                 "- **Eddy, recs.yaml without model**: the same file without its `model` node.",
                 "- **Quix Streams**: `Benchmarks/quix/workloads.py --workload d` (`Benchmarks/quix/recs.py`): session features, "
                 "item popularity and co-view with the top 50 per item — a subset of the no-model row's work (no recent items, "
                 "trending, categories, co-view totals or cart versions). "
                 f"In this run it sent {quix_stats.get('pair_messages', 0):,} pair messages through its repartition topic, "
                 f"closed {quix_stats.get('days_closed', 0):,} item-days and pruned {quix_stats.get('pruned', 0):,} neighbours.", "",
                 "| guarantee | engine | events/s | CPU-s/M | RSS MB | broker CPU-s/M | vs Quix (speed, CPU) | Redis vs Quix EOS |",
                 "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for guarantee in GUARANTEES:
            quix = self.find("d", guarantee, "Quix Streams")
            for engine in ["Quix Streams", *D_ENGINES]:
                r = self.find("d", guarantee, engine)
                versus = "" if r is quix else f"{r['events_per_second'] / quix['events_per_second']:.1f}×, {quix['cpu_per_million'] / r['cpu_per_million']:.1f}×"
                lines.append(f"| {guarantee} | {engine} | {r['events_per_second']:,.0f} | {r['cpu_per_million']:.2f} | "
                             f"{r['rss_mb']:.0f} | {r['broker_cpu_per_million']:.2f} | {versus} | {r['check']} |")
        lines += ["", "What the cross-check compares, after each run, against Quix's exactly-once run: every member of "
                  "`item:popularity`; every `co_view:{item}` key (not `co_view:totals`, which Quix does not keep), each "
                  "with the same neighbours — the kept top 50 plus the neighbours of the days still open, so the pruning "
                  "itself is compared — and ranks within 1e-9 (absolute; ranks are ~490,000 and ~2,900, so values within "
                  "7e-10 relative); every `session:{id}:features` hash, field for field. TTLs are not compared (Quix sets "
                  "a closed session's when the user's next event comes, Eddy by an event-time timer). Both sum decays "
                  "exactly, so equal ranks are expected to the bit; the days close on the same watermark (the least "
                  "latest event time over the source partitions), so the same days are closed at the end.", ""]
        targets = []
        quix = self.find("d", "exactly-once", "Quix Streams")
        for engine in D_ENGINES:
            eddy = self.find("d", "exactly-once", engine)
            speed = eddy["events_per_second"] / quix["events_per_second"]
            cpu = quix["cpu_per_million"] / eddy["cpu_per_million"]
            targets.append(f"- (d) exactly-once, {engine} vs Quix Streams: **{speed:.1f}×** the events/s (target ≥ 20×), "
                           f"**1/{cpu:.1f}** of the CPU-s per million (target ≤ 1/20): "
                           + ("met." if speed >= 20 and cpu >= 20 else "**missed**.")
                           + ("" if eddy["check"].startswith("same") else " Its Redis state DIFFERS from Quix's."))
        return lines, targets

    def write_d_only(self):
        """Replaces workload d's section of RESULTS.md and its lines in Targets; the rest
        of the file stays as it was."""
        path = os.path.join(HERE, "RESULTS.md")
        section, targets = self.d_section()
        lines = open(path).read().rstrip("\n").split("\n") if os.path.exists(path) else ["# Eddy vs Quix Streams, and the machine's ceilings", ""]
        heading = f"## (d) {D_TITLE}"
        if heading in lines:
            start = lines.index(heading)
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        else:  # first time: after (c), before the hand-written analysis and the kept sections
            start = end = next((i for i, line in enumerate(lines) if line.startswith("## ")
                                and not line.startswith(("## Targets", "## Ceilings", "## (a)", "## (b)", "## (c)"))), len(lines))
        lines[start:end] = section
        if "## Targets" in lines:
            lines = [line for line in lines if not line.startswith("- (d) ")]
            t = lines.index("## Targets")
            last = max((i for i in range(t, len(lines)) if lines[i].startswith("- (")), default=t + 1)
            lines[last + 1:last + 1] = targets
        open(path, "w").write("\n".join(lines).rstrip() + "\n")
        print("\n".join(targets))
        print(f"wrote workload d's section of {path}")

    def write(self):
        events = self.args.events
        lines = ["# Eddy vs Quix Streams, and the machine's ceilings", "",
                 f"Generated by `Benchmarks/compare {events}` on {datetime.date.today().isoformat()}: "
                 f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), one Tansu 0.6.0 broker and one "
                 f"redis-server on loopback, started fresh for the run. Eddy `{sh('git', '-C', ROOT, 'rev-parse', '--short', 'HEAD').strip()}` "
                 f"(release build, librdkafka 2.16); Quix Streams {version('quixstreams')} (confluent-kafka {version('confluent-kafka')}). "
                 f"Input: {events:,} generated click events in one topic of 4 partitions keyed by user; every run reads all of it "
                 "from the beginning with a fresh consumer group and state, commit interval 1 s. "
                 "All numbers come from one run of the script; the machine is shared, so compare within it.", "",
                 "- **events/s**: input events over the time from the first record to the last commit "
                 "(Eddy: `--until-caught-up`, which commits as soon as its partitions are at their end; Quix: its final "
                 "checkpoint; Eddy as 2 processes: until each has committed after both together consumed every event, "
                 "read from their metrics, so up to one commit interval of waiting is included).",
                 "- **CPU-s/M**: user + system CPU seconds of the engine's processes per million events, whole process "
                 "lifetime (start-up and group join included).",
                 "- **RSS**: peak resident memory of the largest process.",
                 "- **broker CPU-s/M**: the Tansu process's CPU seconds during the run, per million events.",
                 "- **vs Quix**: events/s ratio, and Quix's CPU-s/M over Eddy's, to Quix Streams under the same guarantee.", ""]
        c = self.ceiling
        lines += ["## Ceilings (same run)", "",
                  "| path | rate | measured by |", "| --- | ---: | --- |",
                  f"| librdkafka consume (consume + discard, the topic above) | {c['consume']:,.0f} records/s | `eddy consume-ceiling` |",
                  f"| RocksDB WriteBatch puts (batches of 4,096, 16-byte values) | {c['rocksdb']:,.0f} puts/s | `eddy write-ceilings` |",
                  f"| Redis pipelined ZADD (pipelines of 4,096) | {c['redis']:,.0f} writes/s | `eddy write-ceilings` |", ""]
        targets = []
        for workload, (title, topology) in WORKLOADS.items():
            lines += [f"## ({workload}) {title}", "",
                      f"Eddy topology: `Benchmarks/topologies/{topology}`; Quix: `Benchmarks/quix/workloads.py --workload {workload}`.", "",
                      "| guarantee | engine | events/s | CPU-s/M | RSS MB | broker CPU-s/M | vs Quix (speed, CPU) |"
                      + (" Redis vs Quix EOS |" if workload == "c" else ""),
                      "| --- | --- | ---: | ---: | ---: | ---: | ---: |" + (" --- |" if workload == "c" else "")]
            for guarantee in GUARANTEES:
                quix = self.find(workload, guarantee, "Quix Streams")
                for engine in ENGINES:
                    r = self.find(workload, guarantee, engine)
                    versus = "" if r is quix else f"{r['events_per_second'] / quix['events_per_second']:.1f}×, {quix['cpu_per_million'] / r['cpu_per_million']:.1f}×"
                    lines.append(f"| {guarantee} | {engine} | {r['events_per_second']:,.0f} | {r['cpu_per_million']:.2f} | "
                                 f"{r['rss_mb']:.0f} | {r['broker_cpu_per_million']:.2f} | {versus} |"
                                 + (f" {r['check']} ({r['check_detail'][0]:,} items) |" if workload == "c" else ""))
            lines.append("")
            eddy, quix = self.find(workload, "exactly-once", "Eddy, 1 thread"), self.find(workload, "exactly-once", "Quix Streams")
            if workload == "a":
                share = self.find(workload, "exactly-once", "Eddy, 1 thread")["events_per_second"] / c["consume"]
                targets.append(f"- (a) exactly-once, Eddy 1 thread at **{share:.0%}** of the consume ceiling (target ≥ 50%): "
                               + ("met." if share >= 0.5 else "**missed**."))
            else:
                speed = eddy["events_per_second"] / quix["events_per_second"]
                cpu = quix["cpu_per_million"] / eddy["cpu_per_million"]
                targets.append(f"- ({workload}) exactly-once, Eddy 1 thread vs Quix Streams: **{speed:.1f}×** the events/s "
                               f"(target ≥ 20×), **1/{cpu:.0f}** of the CPU-s per million (target ≤ 1/20): "
                               + ("met." if speed >= 20 and cpu >= 20 else "**missed**."))
        if "d" in self.args.workloads:
            section, d_targets = self.d_section()
            lines += section
            targets += d_targets
        lines[lines.index("## Ceilings (same run)"):lines.index("## Ceilings (same run)")] = ["## Targets", ""] + targets + [
            "", "![events per second, log scale](results.svg)", ""]
        lines += ["", open(os.path.join(HERE, "analysis.md")).read()]
        # Sections written by other scripts (Benchmarks/side-by-side) are kept.
        path = os.path.join(HERE, "RESULTS.md")
        kept = ""
        if os.path.exists(path):
            old = open(path).read()
            if KEPT_SECTION in old:
                kept = "\n" + old[old.index(KEPT_SECTION):]
        open(path, "w").write("\n".join(lines).rstrip() + "\n" + kept)
        open(os.path.join(HERE, "results.svg"), "w").write(self.chart())
        print("\n".join(targets))
        print(f"wrote {os.path.join(HERE, 'RESULTS.md')} and results.svg")

    def chart(self):
        """Grouped horizontal bars of events/s on a log scale, one group per workload and guarantee."""
        colors = {"Quix Streams": "#9e9e9e", "Eddy, 1 thread": "#1565c0", "Eddy, 2 threads": "#42a5f5", "Eddy, 2 processes": "#00897b"}
        bar, gap, left, width = 14, 18, 250, 560
        top = 40
        rows = [r for r in self.rows if r["workload"] in WORKLOADS]  # (d) has its own engines: not drawn
        lo = 10 ** math.floor(math.log10(min(r["events_per_second"] for r in rows)))
        hi = 10 ** math.ceil(math.log10(max(list(r["events_per_second"] for r in rows) + [self.ceiling["consume"]])))
        x = lambda v: left + width * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        parts, y = [], top
        for workload, (title, _) in WORKLOADS.items():
            for guarantee in GUARANTEES:
                parts.append(f'<text x="{left - 8}" y="{y + 2 * bar + 4}" text-anchor="end" font-size="12">({workload}) {title[:34]}</text>')
                parts.append(f'<text x="{left - 8}" y="{y + 2 * bar + 18}" text-anchor="end" font-size="11" fill="#555">{guarantee}</text>')
                for engine in ENGINES:
                    r = self.find(workload, guarantee, engine)
                    w = x(r["events_per_second"]) - left
                    parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 2}" fill="{colors[engine]}"/>')
                    parts.append(f'<text x="{left + w + 4:.1f}" y="{y + bar - 4}" font-size="10">{r["events_per_second"]:,.0f}</text>')
                    y += bar
                y += gap
        consume = x(self.ceiling["consume"])
        parts.append(f'<line x1="{consume:.1f}" y1="{top - 6}" x2="{consume:.1f}" y2="{y - gap}" stroke="#c62828" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{consume:.1f}" y="{top - 10}" font-size="10" fill="#c62828" text-anchor="middle">consume ceiling</text>')
        decade = lo
        while decade <= hi:
            parts.append(f'<line x1="{x(decade):.1f}" y1="{y - gap + 4}" x2="{x(decade):.1f}" y2="{y - gap + 9}" stroke="#000"/>')
            parts.append(f'<text x="{x(decade):.1f}" y="{y - gap + 22}" font-size="10" text-anchor="middle">{decade:,.0f}</text>')
            decade *= 10
        legend_y = y - gap + 40
        for i, (engine, color) in enumerate(colors.items()):
            parts.append(f'<rect x="{left + i * 140}" y="{legend_y}" width="12" height="12" fill="{color}"/>')
            parts.append(f'<text x="{left + i * 140 + 16}" y="{legend_y + 10}" font-size="11">{engine}</text>')
        height = legend_y + 30
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" font-family="sans-serif">'
                f'<rect width="100%" height="100%" fill="white"/>'
                f'<text x="{left}" y="16" font-size="14" font-weight="bold">events/s (log scale), {self.args.events:,} events, higher is better</text>'
                + "".join(parts) + "</svg>\n")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, required=True, help="input events of workloads a-c")
    p.add_argument("--d-events", type=int, required=True, help="input events of workload d")
    p.add_argument("--d-default", action="store_true", help="--d-events is d's default (said in the output)")
    p.add_argument("--workloads", choices=["abcd", "abc", "d"], default="abcd")
    p.add_argument("--eddy", required=True)
    p.add_argument("--python", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--broker-pid", type=int, required=True)
    p.add_argument("--redis-port", type=int, required=True)
    Bench(p.parse_args()).run()


if __name__ == "__main__":
    main()

# Shared by the scripts: project paths and the service ports named in configs/local.yaml.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${EDDY_CONFIG:-$root/configs/local.yaml}"
run_dir="$root/state/services"
# bootstrap_servers: HOST:PORT under kafka:, port: N under redis:
broker_port=$(awk '/^kafka:/{s=1} s&&/bootstrap_servers:/{split($2,a,":"); print a[2]; exit}' "$config")
redis_port=$(awk '/^redis:/{s=1} s&&/port:/{print $2; exit}' "$config")

# `swift build ARGS…` with its output in state/build.log (or $build_log) and one summary
# line on the terminal. A failed build prints its errors and ends the script: measuring or
# testing the binary a previous build left behind would report on code that is not this one.
swift_build() {
  local log="${build_log:-$root/state/build.log}"
  mkdir -p "$root/state"
  if ! swift build "$@" >"$log" 2>&1; then
    grep -E "error:" "$log" >&2 || tail -20 "$log" >&2
    echo "swift build $* failed; the whole output: $log" >&2
    exit 1
  fi
  tail -1 "$log"
}

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits up to 10 s for something to listen on 127.0.0.1:PORT; fails the script otherwise.
wait_for_port() {
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2
  exit 1
}

# Starts a Tansu broker (memory storage) and a redis-server of the script's own on free
# loopback ports, logging into DIR: a benchmark that shares no broker with other runs or
# other worktrees. Sets broker_port and redis_port; appends both PIDs to the array `pids`,
# which the caller stops on exit.
start_private_services() {
  broker_port=$(free_port)
  redis_port=$(free_port)
  "$root/tools/tansu/bin/tansu" broker --listener-url "tcp://127.0.0.1:$broker_port" \
    --advertised-listener-url "tcp://127.0.0.1:$broker_port" --storage-engine memory://tansu/ >"$1/tansu.log" 2>&1 &
  pids+=($!)
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >"$1/redis.log" 2>&1 &
  pids+=($!)
  wait_for_port "$broker_port"
  wait_for_port "$redis_port"
}

# Writes to FILE the runtime config (configs/local.yaml, or $EDDY_CONFIG) with the broker
# and Redis ports of start_private_services.
# The serve: section is left out: benchmarks that run eddy serve write their own, and a
# binary older than eddy serve (Benchmarks/side-by-side's old one) would refuse it.
private_services_config() {
  without_serve_section "$config" | sed -e "s/bootstrap_servers: .*/bootstrap_servers: 127.0.0.1:$broker_port/" \
    -e "/^redis:/,/^[a-z]/ s/port: .*/port: $redis_port/" >"$1"
}

# FILE without its top-level serve: section, on stdout.
without_serve_section() { awk '/^[a-z_]+:/ { skip = ($0 ~ /^serve:/) } !skip' "$1"; }

# Stops, by PID, the processes in the array `pids` (start_private_services' and the
# caller's own) and waits for them.
stop_pids() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# One round of "Eddy against the consume ceiling" on the same topic, both from its
# beginning: `eddy consume-ceiling` (librdkafka consume + discard), then `eddy run
# TOPOLOGY --until-caught-up` as a fresh application (its own consumer group and state,
# an empty Redis) whose source topic is TOPIC. Leaves DIR/ceiling-ROUND.json and
# DIR/eddy-ROUND.{json,log}; prints the round's figures and where the stream thread's time went.
# Usage: ceiling_and_eddy_round EDDY CONFIG DIR ROUND TOPOLOGY TOPIC
ceiling_and_eddy_round() {
  local eddy=$1 config=$2 dir=$3 round=$4 topology=$5 topic=$6
  local app
  app="$(basename "$topology" .yaml)-$round-$$"
  "$eddy" consume-ceiling --topic "$topic" --config "$config" --json 2>/dev/null >"$dir/ceiling-$round.json"
  sed "s/^application: .*/application: $app/; s/topic: clicks$/topic: $topic/" "$topology" >"$dir/$app.yaml"
  redis-cli -p "$redis_port" FLUSHALL >/dev/null
  "$eddy" run "$dir/$app.yaml" --config "$config" --state-dir "$dir/state" --metrics-port 0 \
    --until-caught-up --json 2>"$dir/eddy-$round.log" >"$dir/eddy-$round.json" \
    || { echo "eddy run failed (round $round):" >&2; tail -20 "$dir/eddy-$round.log" >&2; exit 1; }
  python3 - "$dir" "$round" <<'PY'
import json, sys
work, r = sys.argv[1], sys.argv[2]
c = json.load(open(f"{work}/ceiling-{r}.json")); e = json.load(open(f"{work}/eddy-{r}.json"))
print(f"round {r}: ceiling {c['records_per_second']:,.0f} records/s, eddy {e['records_per_second']:,.0f} records/s "
      f"({e['records_in']:,} records, {e['redis_writes']:,} Redis writes, {e['commits']} commits), "
      f"ratio {e['records_per_second'] / c['records_per_second']:.0%}")
PY
  grep -h "time spent" "$dir/eddy-$round.log" | sed 's/.*\] /        eddy /' || true
}

# The medians of ROUNDS rounds of ceiling_and_eddy_round in DIR and their ratio, in one
# line ending in NOTE.
# Usage: ceiling_and_eddy_medians DIR ROUNDS WHAT [NOTE]
ceiling_and_eddy_medians() {
  python3 - "$@" <<'PY'
import json, statistics, sys
work, n, what, note = sys.argv[1], int(sys.argv[2]), sys.argv[3], (sys.argv[4:] or [""])[0]
c = statistics.median(json.load(open(f"{work}/ceiling-{r}.json"))["records_per_second"] for r in range(1, n + 1))
e = statistics.median(json.load(open(f"{work}/eddy-{r}.json"))["records_per_second"] for r in range(1, n + 1))
print(f"\nmedian of {n}: librdkafka consume ceiling {c:,.0f} records/s; "
      f"{what} {e:,.0f} records/s; ratio {e / c:.0%}{note}")
PY
}

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

# Shared by the scripts: project paths and the service ports named in configs/local.yaml.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${EDDY_CONFIG:-$root/configs/local.yaml}"
run_dir="$root/state/services"
# bootstrap_servers: HOST:PORT under kafka:, port: N under redis:
broker_port=$(awk '/^kafka:/{s=1} s&&/bootstrap_servers:/{split($2,a,":"); print a[2]; exit}' "$config")
redis_port=$(awk '/^redis:/{s=1} s&&/port:/{print $2; exit}' "$config")

# `swift build ARGS…` with its output in state/build.log and one summary line on the
# terminal. A failed build prints its errors and ends the script: measuring or testing
# the binary a previous build left behind would report on code that is not this one.
swift_build() {
  local log="$root/state/build.log"
  mkdir -p "$root/state"
  if ! swift build "$@" >"$log" 2>&1; then
    grep -E "error:" "$log" >&2 || tail -20 "$log" >&2
    echo "swift build $* failed; the whole output: $log" >&2
    exit 1
  fi
  tail -1 "$log"
}

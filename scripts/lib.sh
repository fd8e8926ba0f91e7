# Shared by the scripts: project paths and the service ports named in configs/local.yaml.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${EDDY_CONFIG:-$root/configs/local.yaml}"
run_dir="$root/state/services"
# bootstrap_servers: HOST:PORT under kafka:, port: N under redis:
broker_port=$(awk '/^kafka:/{s=1} s&&/bootstrap_servers:/{split($2,a,":"); print a[2]; exit}' "$config")
redis_port=$(awk '/^redis:/{s=1} s&&/port:/{print $2; exit}' "$config")

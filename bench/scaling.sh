#!/usr/bin/env bash
# rhapi with --workers 1 and --workers 2 on the same machine: req/s and CPU per request for
# hello and the 50-row SQLite list. Run from the repository root after
# `cargo build --release --bin rhapi` (bench/run.sh builds it):
#
#   bench/scaling.sh [DURATION_S]
#
# On a 2-core machine the load generator needs CPU too, so neither case has a core to
# itself: server and wrk (2 threads, 64 connections) share both cores in both cases. The
# ratio is then a lower bound of what a second worker gives on a machine with cores to spare.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration=${1:-6}
bin=target/release/rhapi
app=bench/app
"$bin" migrate "$app" >/dev/null

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # workers path -> "req/s cpu_us_per_req"
    local workers=$1 path=$2 port=$((4700 + RANDOM % 200))
    "$bin" start "$app" --port "$port" --hostname 127.0.0.1 --workers "$workers" --no-watch \
        >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port$path" && break
        sleep 0.1
    done
    wrk -t2 -c64 -d1s "http://127.0.0.1:$port$path" >/dev/null
    local before; before=$(cpu_ticks "$pid")
    local out; out=$(wrk -t2 -c64 -d"${duration}s" "http://127.0.0.1:$port$path")
    local after; after=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local rps; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    local hz; hz=$(getconf CLK_TCK)
    awk -v r="$rps" -v t=$((after - before)) -v hz="$hz" -v d="$duration" \
        'BEGIN { printf "%.0f %.1f\n", r, (t / hz) * 1e6 / (r * d) }'
}

echo "| route | --workers 1 req/s | --workers 2 req/s | 2 / 1 | CPU/req 1 | CPU/req 2 |"
echo "|---|--:|--:|--:|--:|--:|"
for path in /api/hello /api/items; do
    read -r r1 c1 < <(run 1 "$path")
    read -r r2 c2 < <(run 2 "$path")
    awk -v p="$path" -v r1="$r1" -v r2="$r2" -v c1="$c1" -v c2="$c2" \
        'BEGIN { printf "| GET %s | %d | %d | %.2f | %.1f µs | %.1f µs |\n", p, r1, r2, r2 / r1, c1, c2 }'
done

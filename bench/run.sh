#!/usr/bin/env bash
# rhapi benchmark harness. Run from the repo root:
#
#   bench/run.sh                 # full run: 3 rounds x 8 s, rhapi vs raw actix-web
#   bench/run.sh --with-next     # ... and vs Next.js (npm install + next build on first use)
#   bench/run.sh --with-bun --with-node --with-fastify   # ... and vs Bun, node:http, Fastify
#                                # (or --peers bun,node,fastify; npm install on first use)
#   bench/run.sh --baseline /tmp/rhapi-base   # ... and an older rhapi binary, route by route
#   bench/run.sh concurrency [--quick] [--scenarios slow,c10k,mixed,runaway,sse]
#                                # slow upstream, 10k connections, SSE: rhapi vs Bun
#                                # (bench/concurrency.py; --no-bun, --baseline, --peers too)
#   bench/run.sh --quick         # smoke run: 1 round x 3 s, short scenarios
#   bench/run.sh reload [...]    # hot-reload latency of `rhapi dev` (bench/reload.py)
#   bench/run.sh instructions    # user-space instructions per request (bench/instructions.py)
#   bench/run.sh conduit [...]   # examples/conduit on SQLite and PostgreSQL (bench/conduit.py);
#                                # uses target/release/rhapi as it is (builds only if missing)
#   bench/run.sh jobs [--only drain,latency,sqlite,enqueue,kill] [--jobs N]
#                                # jobs vs graphile-worker on PostgreSQL (.ci/postgres),
#                                # SQLite, enqueue cost, kill -9 (bench/jobs.py)
#   bench/run.sh realtime [--quick] [--scenarios idle,echo,fanout,storm,remote]
#                                # WebSockets and publish/subscribe: rhapi vs Bun; two
#                                # instances on PostgreSQL (bench/realtime.py, bench/ws_load.rs)
#   bench/run.sh features [--quick] [--groups files,mw,cors] [--no-instructions]
#                                # public/ files vs actix-files and Bun.file, middleware levels,
#                                # [cors] (bench/features.py)
#   bench/run.sh tls [--rounds N] [--duration S] [--no-h2]
#                                # HTTPS hello and handshakes: rhapi vs Caddy vs Bun (bench/tls.py)
#
# Other options (passed to bench/run.py): --rounds N  --duration S  --no-build
#   --routes hello,echo,params,work,db,items  --no-scenarios  --isolation-only  --out FILE
# See bench/README.md for what is measured and what the columns mean.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sub=bench
if [[ "${1:-}" == "reload" || "${1:-}" == "instructions" || "${1:-}" == "concurrency" ||
      "${1:-}" == "features" || "${1:-}" == "conduit" || "${1:-}" == "jobs" ||
      "${1:-}" == "tls" || "${1:-}" == "realtime" ]]; then
    sub=$1
    shift
fi

build=1
with_next=0
with_bun=0
with_fastify=0
with_node=0
prev=
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        --with-next) with_next=1 ;;
        --with-bun) with_bun=1 ;;
        --with-node) with_node=1 ;;
        --with-fastify) with_fastify=1 ;;
        --peers=*) prev=--peers; arg=${arg#--peers=} ;;
    esac
    if [[ $prev == --peers ]]; then
        [[ ,$arg, == *,bun,* ]] && with_bun=1
        [[ ,$arg, == *,node,* ]] && with_node=1
        [[ ,$arg, == *,fastify,* ]] && with_fastify=1
    fi
    prev=$arg
done
# The concurrency scenarios compare with Bun unless told --no-bun.
if [[ $sub == concurrency || $sub == realtime ]]; then
    with_bun=1
    for arg in "$@"; do [[ $arg == --no-bun ]] && with_bun=0; done
fi
# The features' public/ files are compared with Bun.file.
[[ $sub == features ]] && with_bun=1

# Installs Debian package $1 (whose command has the same name, or is $2) when it is missing.
ensure_installed() {
    command -v "${2:-$1}" >/dev/null 2>&1 && return 0
    echo "== installing $1" >&2
    if [[ $(id -u) == 0 ]]; then
        apt-get install -y "$1" >&2 || { apt-get update >&2 && apt-get install -y "$1" >&2; }
    else
        sudo apt-get install -y "$1" >&2
    fi
}

if [[ $sub == conduit ]]; then
    # The release binary as it is: build it only when it is missing.
    if [[ ! -x target/release/rhapi ]]; then
        echo "== cargo build --release --bin rhapi" >&2
        cargo build --release --bin rhapi >&2
    fi
    ensure_installed wrk
    command -v taskset >/dev/null 2>&1 || { echo "taskset (util-linux) is required" >&2; exit 1; }
    args=()
    for arg in "$@"; do [[ $arg == --no-build ]] || args+=("$arg"); done
    exec python3 bench/conduit.py "${args[@]}"
fi

if [[ $sub == jobs ]]; then
    [[ -x target/release/rhapi ]] || cargo build --release --bin rhapi >&2
    [[ -d bench/jobs/node_modules ]] || (cd bench/jobs && npm install --no-audit --no-fund >&2)
    if [[ -z "${RHAPI_BENCH_PG_URL:-}" ]]; then
        eval "$(.ci/postgres start)"
        export RHAPI_BENCH_PG_URL="${RHAPI_TEST_POSTGRES_URL%/*}/postgres"
    fi
    args=()
    for arg in "$@"; do [[ $arg == --no-build ]] || args+=("$arg"); done
    exec python3 bench/jobs.py "${args[@]}"
fi

if [[ $sub == tls ]]; then
    if [[ $build == 1 ]]; then
        echo "== cargo build --release --bin rhapi" >&2
        cargo build --release --bin rhapi >&2
    fi
    ensure_installed wrk
    ensure_installed caddy
    ensure_installed nghttp2-client h2load
    command -v taskset >/dev/null 2>&1 || { echo "taskset (util-linux) is required" >&2; exit 1; }
    if [[ ! -x bench/bun/node_modules/@oven/bun-linux-x64/bin/bun ]]; then
        (cd bench/bun && npm install --no-audit --no-fund >&2)
    fi
    args=()
    for arg in "$@"; do [[ $arg == --no-build ]] || args+=("$arg"); done
    exec python3 bench/tls.py "${args[@]}"
fi

if [[ $build == 1 ]]; then
    echo "== cargo build --release --bin rhapi --examples" >&2
    cargo build --release --bin rhapi --examples >&2
fi

if [[ $sub == reload ]]; then
    exec python3 bench/reload.py "$@"
fi

if [[ $sub == instructions ]]; then
    ensure_installed valgrind
    args=()
    for arg in "$@"; do [[ $arg == --no-build ]] || args+=("$arg"); done
    exec python3 bench/instructions.py "${args[@]}"
fi

ensure_installed wrk
command -v taskset >/dev/null 2>&1 || { echo "taskset (util-linux) is required" >&2; exit 1; }

# npm install in bench/$1 when $2 (a path under it) is missing.
npm_install() {
    command -v npm >/dev/null 2>&1 || { echo "bench/$1 needs node and npm" >&2; exit 1; }
    if [[ ! -e bench/$1/$2 ]]; then
        echo "== npm install (bench/$1)" >&2
        (cd "bench/$1" && npm install --no-audit --no-fund >&2)
    fi
}

if [[ $with_bun == 1 ]]; then
    # Bun's own binary, from the npm package @oven/bun-linux-x64 (bench/bun/package.json).
    npm_install bun node_modules/@oven/bun-linux-x64/bin/bun
    bench/bun/node_modules/@oven/bun-linux-x64/bin/bun --version >/dev/null || {
        echo "the Bun binary in bench/bun does not run on this machine" >&2; exit 1; }
fi
if [[ $with_fastify == 1 ]]; then
    npm_install fastify node_modules/fastify/package.json
fi
if [[ $with_node == 1 || $with_fastify == 1 ]]; then
    command -v node >/dev/null 2>&1 || { echo "--with-node/--with-fastify need node" >&2; exit 1; }
fi

if [[ $sub == features ]]; then
    no_instr=0
    for arg in "$@"; do [[ $arg == --no-instructions ]] && no_instr=1; done
    [[ $no_instr == 1 ]] || ensure_installed valgrind
    exec python3 bench/features.py "$@"
fi

if [[ $sub == concurrency ]]; then
    # 10,000 client connections plus as many to the upstream: as many descriptors as allowed.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    exec python3 bench/concurrency.py "$@"
fi

if [[ $sub == realtime ]]; then
    # 10,000 sockets in the server and as many in the client.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    # Two instances on one PostgreSQL (scenario remote): the CI server unless told another.
    if [[ -z "${RHAPI_BENCH_PG_URL:-}" && -x .ci/postgres ]]; then
        eval "$(.ci/postgres start)" || true
        [[ -n "${RHAPI_TEST_POSTGRES_URL:-}" ]] && export RHAPI_BENCH_PG_URL="$RHAPI_TEST_POSTGRES_URL"
    fi
    args=()
    for arg in "$@"; do [[ $arg == --no-build ]] || args+=("$arg"); done
    exec python3 bench/realtime.py "${args[@]}"
fi

if [[ $with_next == 1 ]]; then
    command -v node >/dev/null 2>&1 || { echo "--with-next needs node and npm" >&2; exit 1; }
    if [[ ! -x bench/next-app/node_modules/.bin/next ]]; then
        echo "== npm install (bench/next-app)" >&2
        (cd bench/next-app && npm install --no-audit --no-fund >&2)
    fi
    # Rebuild when a page is newer than the last build.
    if [[ ! -f bench/next-app/.next/BUILD_ID ]] || \
       [[ -n $(find bench/next-app/pages bench/next-app/package.json -newer bench/next-app/.next/BUILD_ID 2>/dev/null) ]]; then
        echo "== next build (bench/next-app)" >&2
        (cd bench/next-app && NEXT_TELEMETRY_DISABLED=1 ./node_modules/.bin/next build >&2)
    fi
fi

exec python3 bench/run.py "$@"

#!/usr/bin/env python3
"""rhapi throughput benchmark (stdlib only). Called by bench/run.sh, which builds first.

Per round, for every route, every variant (raw actix-web, rhapi, optionally an older rhapi binary
given with --baseline, Next.js, Bun, node:http and Fastify) gets a
fresh server process pinned to the server core; wrk, pinned to the client core, runs a 1 s
warm-up and then the measured run. Then: RSS with 100 route files, cold start with 1,000 route
files, and the bare script cost of the work route. The report (Markdown) goes to stdout and to
bench/out/latest.md; the raw figures to bench/out/latest.json.
"""

import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
RHAPI = os.path.join(ROOT, "target", "release", "rhapi")
RAW = os.path.join(ROOT, "target", "release", "examples", "raw-actix")
SCRIPT_COST = os.path.join(ROOT, "target", "release", "examples", "script-cost")
NEXT_APP = os.path.join(BENCH, "next-app")
NEXT_BIN = os.path.join(NEXT_APP, "node_modules", "next", "dist", "bin", "next")
# Bun, from the npm package @oven/bun-linux-x64 (bench/run.sh installs it in bench/bun).
BUN = os.path.join(BENCH, "bun", "node_modules", "@oven", "bun-linux-x64", "bin", "bun")
BUN_SERVER = os.path.join(BENCH, "bun", "server.js")
NODE_SERVER = os.path.join(BENCH, "node", "server.js")
FASTIFY_SERVER = os.path.join(BENCH, "fastify", "server.js")
# An older rhapi binary to compare against (--baseline PATH), served as variant "base".
BASE = None
# The JavaScript peers besides Next.js, in report order.
PEERS = ("bun", "node", "fastify")


def make_echo_body():
    """A deterministic JSON document of about 1 KB (1,0xx bytes)."""
    doc = {
        "user": {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "admin": False},
        "tags": ["alpha", "beta", "gamma", "delta"],
        "items": [],
    }
    i = 0
    while len(json.dumps(doc, separators=(",", ":"))) < 1000:
        doc["items"].append({"sku": "sku-%04d" % i, "qty": i % 7 + 1, "price": 9.5 + i,
                             "note": "item number %d" % i})
        i += 1
    return json.dumps(doc, separators=(",", ":"))


ECHO_BODY = make_echo_body()

# name -> (method, path, body)
ROUTES = {
    "hello": ("GET", "/api/hello", None),
    "echo": ("POST", "/api/echo", ECHO_BODY),
    "params": ("GET", "/api/users/42?fields=name,email&sort=asc", None),
    "work": ("GET", "/api/work", None),
    "db": ("GET", "/api/items/42", None),
    "items": ("GET", "/api/items", None),
}
# Routes some servers do not have: the Next.js app has no SQLite (better-sqlite3 needs a
# native build that this machine's closed network cannot fetch), nor node:http and Fastify
# (node 20 has no built-in SQLite). Bun has bun:sqlite.
ROUTE_VARIANTS = {"db": ("raw", "rhapi", "base", "bun"), "items": ("raw", "rhapi", "base", "bun")}
# The bench app's SQLite file; `rhapi migrate` creates and fills it before the rounds.
BENCH_DB = os.path.join(BENCH, "app", "data", "app.db")
ROUTE_LABEL = {
    "hello": "GET /api/hello",
    "echo": "POST /api/echo (1 KB JSON)",
    "params": "GET /api/users/[id]?query",
    "work": "GET /api/work (100 maps)",
    "db": "GET /api/items/[id] (SQLite row by key)",
    "items": "GET /api/items (50 SQLite rows)",
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(port, method, path, body=None, timeout=2.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc, port, method="GET", path="/api/hello", body=None, timeout=60.0):
    """Polls until the route answers 200. Returns the seconds it took, or raises."""
    start = time.perf_counter()
    deadline = start + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with code %s before it was ready" % proc.returncode)
        try:
            status, _ = http_request(port, method, path, body, timeout=1.0)
            if status == 200:
                return time.perf_counter() - start
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.005)
    raise RuntimeError("server on port %d not ready after %.0f s" % (port, timeout))


def descendants(pid):
    """pid and every process below it."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            ppid = int(stat[stat.rfind(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_split(pid):
    """(user, system) CPU time of pid and its descendants (all their threads), in seconds.

    System time is the kernel's share: on a small route most of it is the socket work that
    every server does the same way (one recv and one send per request), so the user share
    is where servers differ."""
    user = system = 0
    for p in descendants(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def cpu_seconds(pid):
    """User + system CPU time of pid and its descendants (all their threads), in seconds."""
    return sum(cpu_split(pid))


def rss_kib(pid):
    """VmRSS of pid plus its descendants (Next.js may fork), in KiB."""
    total = 0
    for p in descendants(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Server:
    """One server process in its own session, so stopping it also stops anything it forked."""

    def __init__(self, variant, app_dir=None, port=None, core="0", extra_args=(), extra_env=None,
                 wrapper=()):
        self.variant = variant
        self.port = port or free_port()
        if variant in ("rhapi", "base"):
            cmd = [RHAPI if variant == "rhapi" else BASE, "start", app_dir or os.path.join(BENCH, "app"), "--port", str(self.port),
                   "--hostname", "127.0.0.1", "--workers", "1", "--no-watch"] + list(extra_args)
            cwd, env = ROOT, dict(os.environ, **(extra_env or {}))
        elif variant == "raw":
            cmd, cwd, env = [RAW, str(self.port), BENCH_DB], ROOT, dict(os.environ)
        elif variant == "bun":
            cmd = [BUN, BUN_SERVER, str(self.port), BENCH_DB]
            # production: an error is a short 500, not Bun's development error page.
            cwd, env = ROOT, dict(os.environ, NODE_ENV="production", **(extra_env or {}))
        elif variant in ("node", "fastify"):
            cmd = ["node", NODE_SERVER if variant == "node" else FASTIFY_SERVER, str(self.port)]
            cwd, env = ROOT, dict(os.environ, NODE_ENV="production", **(extra_env or {}))
        elif variant == "next":
            cmd = ["node", NEXT_BIN, "start", "-p", str(self.port), "-H", "127.0.0.1"]
            cwd = NEXT_APP
            env = dict(os.environ, NEXT_TELEMETRY_DISABLED="1", NODE_ENV="production")
        else:
            raise ValueError(variant)
        self.started = time.perf_counter()
        # `wrapper`: a command that runs the server (valgrind, for bench/instructions.py).
        self.proc = subprocess.Popen(["taskset", "-c", core] + list(wrapper) + cmd, cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def rss(self):
        return rss_kib(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------
# wrk

UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def parse_duration_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError("bad wrk duration %r" % text)
    return float(m.group(1)) * UNIT_US[m.group(2)]


def parse_wrk(out):
    res = {"errors": 0, "non2xx": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError("no Requests/sec in wrk output:\n" + out)
    res["rps"] = float(m.group(1))
    dist = out.split("Latency Distribution", 1)
    if len(dist) == 2:
        for pct, val in re.findall(r"^\s+(\d+)%\s+(\S+)", dist[1], re.M):
            res["p%s" % pct] = parse_duration_us(val)
    m = re.search(r"^\s+Latency\s+(\S+)\s+\S+\s+(\S+)", out, re.M)
    if m:
        res["mean"] = parse_duration_us(m.group(1))
        res["max"] = parse_duration_us(m.group(2))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["errors"] = sum(int(x) for x in m.groups())
        res["socket_errors"] = m.group(0)
    m = re.search(r"(\d+) requests in", out)
    if m:
        res["requests"] = int(m.group(1))
    return res


def lua_script(tmpdir, route):
    method, _, body = ROUTES[route]
    if method == "GET":
        return None
    path = os.path.join(tmpdir, "%s.lua" % route)
    with open(path, "w") as f:
        f.write('wrk.method = "%s"\n' % method)
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write("wrk.body = [==[%s]==]\n" % body)
    return path


def run_wrk(args, port, route, duration, latency, lua, timeout_s=None):
    _, path, _ = ROUTES[route]
    cmd = ["taskset", "-c", args.client_core, "wrk"] + (["--latency"] if latency else []) + [
        "-t1", "-c%d" % args.connections, "-d%ds" % duration]
    if timeout_s:
        # wrk drops requests slower than its timeout (2 s) from the latencies: a stall
        # would vanish from p99 and max.
        cmd += ["--timeout", "%ds" % timeout_s]
    if lua:
        cmd += ["-s", lua]
    cmd.append("http://127.0.0.1:%d%s" % (port, path))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return parse_wrk(out)


def check_response(variant, route, status, body):
    """Every variant must answer the same JSON, else the comparison is meaningless."""
    if status != 200:
        raise RuntimeError("%s %s answered %d: %r" % (variant, route, status, body[:300]))
    got = json.loads(body)
    if route == "hello":
        ok = got == {"message": "Hello from API route!"}
    elif route == "echo":
        ok = got == json.loads(ECHO_BODY)
    elif route == "params":
        ok = got == {"id": "42", "fields": "name,email", "sort": "asc"}
    elif route == "db":
        ok = got == {"id": 42, "name": "item 42", "price": 126}
    elif route == "items":
        ok = isinstance(got, list) and len(got) == 50 and got[41] == {
            "id": 42, "name": "item 42", "price": 126}
    else:
        ok = got.get("count") == 100 and got["items"][7] == {
            "id": 7, "name": "item 7", "price": 21, "tags": ["a", "b"], "active": False}
    if not ok:
        raise RuntimeError("%s %s answered unexpected JSON: %r" % (variant, route, body[:300]))


def one_run(args, variant, route, lua, checked):
    method, path, body = ROUTES[route]
    with Server(variant, core=args.server_core) as srv:
        wait_ready(srv.proc, srv.port, method, path, body)
        if (variant, route) not in checked:
            check_response(variant, route, *http_request(srv.port, method, path, body))
            checked.add((variant, route))
        run_wrk(args, srv.port, route, args.warmup, False, lua)
        user_before, system_before = cpu_split(srv.proc.pid)
        res = run_wrk(args, srv.port, route, args.duration, True, lua)
        # CPU per request: what the server spent, whether or not wrk kept it busy, and the
        # part of it spent in user space (the rest is the kernel's).
        if res.get("requests"):
            user, system = cpu_split(srv.proc.pid)
            n = res["requests"]
            res["user_us"] = (user - user_before) * 1e6 / n
            res["cpu_us"] = res["user_us"] + (system - system_before) * 1e6 / n
        res["rss_kib"] = srv.rss()
    return res


# ---------------------------------------------------------------------------------------------
# scenarios


def route_source(i):
    """A realistic small route file, different in every file."""
    return """// generated route {i}
const LIMIT = {limit};

fn validate(body) {{
    if type_of(body) != "map" {{ throw #{{ status: 400, error: "body must be an object" }}; }}
    if !("name" in body) {{ throw #{{ status: 400, error: "name is required" }}; }}
    body
}}

fn GET(req, res) {{
    let page = if "page" in req.query {{ parse_int(req.query.page) }} else {{ 1 }};
    let items = [];
    for n in 0..3 {{ items.push(#{{ id: n + page * 10, route: {i} }}); }}
    res.status(200).json(#{{ route: {i}, page: page, limit: global::LIMIT, items: items }});
}}

fn POST(req, res) {{
    let data = validate(req.body);
    res.status(201).json(#{{ created: data.name, route: {i} }});
}}
""".format(i=i, limit=10 + i % 90)


def generate_app(n):
    """A temp app with n route files: pages/api/g<k>/r<i>.rhai, 50 per folder."""
    root = tempfile.mkdtemp(prefix="rhapi-bench-%d-" % n)
    for i in range(n):
        folder = os.path.join(root, "pages", "api", "g%02d" % (i // 50))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "r%04d.rhai" % i), "w") as f:
            f.write(route_source(i))
    return root


def gen_route_path(i):
    return "/api/g%02d/r%04d" % (i // 50, i)


def scenario_rss(args, n):
    app = generate_app(n)
    try:
        with Server("rhapi", app_dir=app, core=args.server_core) as srv:
            wait_ready(srv.proc, srv.port, path=gen_route_path(n - 1))
            for i in range(n):  # touch every route once
                status, _ = http_request(srv.port, "GET", gen_route_path(i))
                if status != 200:
                    raise RuntimeError("generated route %d answered %d" % (i, status))
            return srv.rss()
    finally:
        shutil.rmtree(app, ignore_errors=True)


def scenario_isolation(args):
    """hello under wrk while one request to a runaway route (`spin.rhai`, stopped by a 2 s
    budget) runs, and the same without the runaway; for rhapi, and for the baseline binary
    when one is given (--baseline)."""
    import threading
    rows = []
    for placement in ("rhapi", "base") if args.baseline else ("rhapi",):
        for spin in (False, True):
            extra = ["--timeout", "2s", "--max-operations", "0"]
            with Server(placement, core=args.server_core, extra_args=extra) as srv:
                wait_ready(srv.proc, srv.port)
                run_wrk(args, srv.port, "hello", args.warmup, False, None)
                answer = {}

                def runaway():
                    time.sleep(1.0)  # start while wrk is running
                    t0 = time.perf_counter()
                    status, _ = http_request(srv.port, "GET", "/api/spin", None, timeout=30.0)
                    answer["status"], answer["s"] = status, time.perf_counter() - t0

                worker = threading.Thread(target=runaway) if spin else None
                if worker:
                    worker.start()
                res = run_wrk(args, srv.port, "hello", 6, True, None, timeout_s=10)
                if worker:
                    worker.join()
            rows.append((placement, spin, res, answer))
            log("isolation %-6s %-8s hello %8.0f req/s  p99 %s  max %s%s" % (
                placement, "runaway" if spin else "alone", res["rps"], fmt_us(res.get("p99")),
                fmt_us(res.get("max")),
                "  runaway answered %s after %.2f s" % (answer["status"], answer["s"])
                if answer else ""))
    return rows


def idle_rss(args, variant):
    with Server(variant, core=args.server_core) as srv:
        wait_ready(srv.proc, srv.port)
        for route, (method, path, body) in ROUTES.items():
            if variant in ROUTE_VARIANTS.get(route, (variant,)):
                http_request(srv.port, method, path, body)
        return srv.rss()


def cold_start_once(args, variant, app_dir, path):
    """ms from spawning the server to the first 200, polling in a tight loop."""
    port = free_port()
    srv = Server(variant, app_dir=app_dir, port=port, core=args.server_core)
    try:
        t0 = srv.started
        deadline = t0 + 60
        while True:
            now = time.perf_counter()
            if now > deadline:
                raise RuntimeError("cold start: no 200 after 60 s")
            if srv.proc.poll() is not None:
                raise RuntimeError("cold start: server exited with %s" % srv.proc.returncode)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status == 200:
                    return (time.perf_counter() - t0) * 1000.0
            except (OSError, http.client.HTTPException):
                pass
    finally:
        srv.stop()


def scenario_cold(args, variant, n, reps):
    app = generate_app(n) if n else None
    try:
        path = gen_route_path(n - 1) if n else "/api/hello"
        return [cold_start_once(args, variant, app, path) for _ in range(reps)]
    finally:
        if app:
            shutil.rmtree(app, ignore_errors=True)


def script_cost(args):
    out = subprocess.run(["taskset", "-c", args.server_core, SCRIPT_COST,
                          os.path.join(BENCH, "app", "pages", "api", "work.rhai")],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    vals = dict(line.split() for line in out.splitlines() if line.strip())
    return float(vals["script_call_us"]), float(vals["script_call_json_us"])


# ---------------------------------------------------------------------------------------------
# report


def git(*cmd):
    try:
        return subprocess.run(["git", "-C", ROOT] + list(cmd), capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def fmt_us(us):
    if us is None:
        return "–"
    if us >= 10_000:
        return "%.1f ms" % (us / 1000)
    if us >= 1000:
        return "%.2f ms" % (us / 1000)
    return "%.0f µs" % us


def fmt_cpu(us):
    return "–" if us is None else "%.1f µs" % us


def fmt_rps(x):
    return "{:,.0f}".format(x)


def fmt_mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def variants_of(route, variants):
    """The variants that serve `route`, in the given order."""
    return [v for v in variants if v in ROUTE_VARIANTS.get(route, variants)]


REF_LABEL = {"raw": "raw", "base": "base", "bun": "Bun", "next": "Next"}


def per_round_ratio(by_variant, v, ref):
    """Median over rounds of v's req/s / ref's req/s in the same round, or None."""
    a, b = by_variant.get(v) or [], by_variant.get(ref) or []
    ratios = [x["rps"] / y["rps"] for x, y in zip(a, b) if y["rps"]]
    return median(ratios)


def build_report(args, meta, results, variants, extra):
    L = []
    L.append("# rhapi benchmark, %s" % meta["date"])
    L.append("")
    L.append("- commit `%s`%s, rhapi binary built at %s; `nproc` = %s; %s" % (
        meta["commit"], " (the work tree had uncommitted changes in src/ or Cargo.*: the "
        "binary may include them)" if meta["dirty"] else "", meta["binary_built"],
        meta["nproc"], meta["cpu"]))
    L.append("- server pinned to core %s (`--workers 1`), wrk pinned to core %s: "
             "`wrk --latency -t1 -c%d -d%ds` after a %d s warm-up; a fresh server per run; "
             "%d round(s), variants interleaved in each round" % (
                 args.server_core, args.client_core, args.connections, args.duration,
                 args.warmup, args.rounds))
    L.append("- load average before / after the run: %s / %s (other work on the machine "
             "skews every figure; compare ratios within one run)" % (meta["load_before"],
                                                                   meta["load_after"]))
    if meta.get("versions"):
        L.append("- peers: %s" % meta["versions"])
    if meta.get("baseline"):
        L.append("- baseline binary (`base`): `%s`, built at %s" % meta["baseline"])
    L.append("- CPU/req: the server's user + system CPU time over the measured run / requests; "
             "user/req: its user-space part (the rest is the kernel's socket work, about the "
             "same for every server on a small route).")
    L.append("- req/s and latencies are medians over rounds; ratios are medians of the "
             "per-round ratios (same round, same route). RSS: VmRSS right after the load.")
    L.append("")
    # Ratio columns: against raw always, and against Next.js, Bun and the baseline binary
    # when they ran.
    refs = ["raw"] + [v for v in ("base", "bun", "next") if v in variants]
    head = "| route | server | req/s | " + "".join("vs %s | " % REF_LABEL[r] for r in refs) + \
        "p50 | p99 | CPU/req | user/req | RSS | per-round req/s |"
    L.append(head)
    L.append("|" + "---|" * (head.count("|") - 1))
    for route in args.routes:
        for v in variants_of(route, variants):
            runs = results[route][v]
            rps = [r["rps"] for r in runs]
            cells = [ROUTE_LABEL[route], v, fmt_rps(median(rps))]
            for ref in refs:
                ratio = per_round_ratio(results[route], v, ref)
                cells.append("–" if ratio is None or v == ref else "%.2f" % ratio)
            cells += [fmt_us(median([r.get("p50") for r in runs])),
                      fmt_us(median([r.get("p99") for r in runs])),
                      fmt_cpu(median([r.get("cpu_us") for r in runs])),
                      fmt_cpu(median([r.get("user_us") for r in runs])),
                      fmt_mib(median([r["rss_kib"] for r in runs])),
                      " ".join("%.0f" % x for x in rps)]
            non2xx = sum(r["non2xx"] for r in runs)
            errors = sum(r["errors"] for r in runs)
            if non2xx or errors:
                cells[1] += " (%d non-2xx, %d socket errors)" % (non2xx, errors)
            L.append("| " + " | ".join(cells) + " |")
    L.append("")

    if "base" in variants:
        L.append("## rhapi against the baseline binary (`%s`)" % args.baseline)
        L.append("")
        L.append("Median of the per-round ratios rhapi req/s / baseline req/s, same round and "
                 "route; a regression is a ratio below 0.95.%s" % (
                     " **Only %d round(s): on a shared VM one run moves by more than 5 %%, so "
                     "this verdict needs --rounds 5 or more on a quiet machine.**" % args.rounds
                     if args.rounds < 5 else ""))
        L.append("")
        L.append("| route | rhapi req/s | base req/s | rhapi / base | within 5 % |")
        L.append("|---|--:|--:|--:|---|")
        for route in args.routes:
            ratio = per_round_ratio(results[route], "rhapi", "base")
            if ratio is None:
                continue
            L.append("| %s | %s | %s | %.3f | %s |" % (
                ROUTE_LABEL[route], fmt_rps(median([r["rps"] for r in results[route]["rhapi"]])),
                fmt_rps(median([r["rps"] for r in results[route]["base"]])), ratio,
                "✅" if ratio >= 0.95 else "❌ regression"))
        L.append("")

    if "work" in args.routes and extra.get("script"):
        call_us, call_json_us = extra["script"]
        work_rps = median([r["rps"] for r in results["work"]["rhapi"]])
        per_req = 1e6 / work_rps
        cost = per_req - call_us
        cost_json = per_req - call_json_us
        L.append("## Server cost per request, work route")
        L.append("")
        L.append("| figure | µs |")
        L.append("|---|--:|")
        L.append("| rhapi, one work request on one core (1e6 / median req/s) | %.1f |" % per_req)
        L.append("| bare script call (`script-cost`: call_fn, best of 5 x 5,000) | %.1f |" % call_us)
        L.append("| script call + `serde_json::to_vec` of the result | %.1f |" % call_json_us)
        L.append("| **server cost = per request − bare script call** (target ≤ 10) | **%.1f** %s |"
                 % (cost, "✅" if cost <= 10 else "❌"))
        L.append("| server cost without JSON serialisation (per request − call + JSON) | %.1f |"
                 % cost_json)
        cpu_rhapi = median([r.get("cpu_us") for r in results["work"]["rhapi"]])
        cpu_raw = median([r.get("cpu_us") for r in results["work"]["raw"]])
        if cpu_rhapi is not None and cpu_raw is not None:
            L.append("| rhapi's server CPU per work request (process CPU time / requests) | %.1f |"
                     % cpu_rhapi)
            L.append("| for scale: raw actix-web's server CPU per request on the same route "
                     "(HTTP, kernel and its own serde work) | %.1f |" % cpu_raw)
        L.append("")

    iso = extra.get("isolation")
    if iso:
        L.append("## Isolation: hello while one runaway request runs (6 s of wrk, runaway "
                 "sent at 1 s, stopped by `--timeout 2s`)")
        L.append("")
        L.append("| server | runaway | hello req/s | p99 | max | runaway answer |")
        L.append("|---|---|--:|--:|--:|---|")
        for placement, spin, res, answer in iso:
            L.append("| %s%s | %s | %s | %s | %s | %s |" % (
                placement, " (baseline binary)" if placement == "base" else "",
                "yes" if spin else "no", fmt_rps(res["rps"]), fmt_us(res.get("p99")),
                fmt_us(res.get("max")),
                "%d after %.2f s" % (answer["status"], answer["s"]) if answer else "–"))
        L.append("")

    sc = extra.get("scenarios")
    if sc:
        L.append("## Memory and start-up")
        L.append("")
        L.append("| scenario | result |")
        L.append("|---|--:|")
        for label, val in sc:
            L.append("| %s | %s |" % (label, val))
        L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------


def add_peer_args(ap):
    """The options choosing the JavaScript peers and the baseline binary (run.py and
    concurrency.py)."""
    ap.add_argument("--with-bun", action="store_true", help="also run Bun (bench/bun)")
    ap.add_argument("--with-node", action="store_true", help="also run node:http (bench/node)")
    ap.add_argument("--with-fastify", action="store_true", help="also run Fastify (bench/fastify)")
    ap.add_argument("--peers", default="", help="comma list of bun,node,fastify (the same)")
    ap.add_argument("--baseline", metavar="PATH",
                    help="an older rhapi binary, run as variant 'base' beside target/release/rhapi")


def resolve_peers(ap, args):
    """The set of JavaScript peers asked for; sets BASE from --baseline."""
    global BASE
    peers = {p for p in args.peers.split(",") if p}
    for p in PEERS:
        if getattr(args, "with_" + p):
            peers.add(p)
    unknown = peers - set(PEERS)
    if unknown:
        ap.error("unknown peer(s) %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(PEERS)))
    if args.baseline:
        if not os.access(args.baseline, os.X_OK):
            ap.error("--baseline %s is not an executable file" % args.baseline)
        BASE = os.path.abspath(args.baseline)
    return peers


def peer_versions(variants):
    """"bun 1.x, node v20.x, ..." for the variants that are not rhapi's own binaries."""
    out = []
    if "bun" in variants:
        out.append("Bun " + subprocess.run([BUN, "--version"], capture_output=True,
                                           text=True).stdout.strip())
    if {"node", "fastify", "next"} & set(variants):
        out.append("node " + subprocess.run(["node", "--version"], capture_output=True,
                                            text=True).stdout.strip())
    if "fastify" in variants:
        try:
            with open(os.path.join(BENCH, "fastify", "node_modules", "fastify",
                                   "package.json")) as f:
                out.append("Fastify " + json.load(f)["version"])
        except (OSError, ValueError, KeyError):
            pass
    return ", ".join(out)


def check_peers(peers):
    if "bun" in peers and not os.access(BUN, os.X_OK):
        sys.exit("Bun is not installed in bench/bun: run bench/run.sh --with-bun")
    if peers & {"node", "fastify"} and not shutil.which("node"):
        sys.exit("node is not installed (needed by --with-node / --with-fastify)")
    if "fastify" in peers and not os.path.isdir(os.path.join(BENCH, "fastify", "node_modules",
                                                              "fastify")):
        sys.exit("Fastify is not installed in bench/fastify: run bench/run.sh --with-fastify")


def main():
    global RHAPI, RAW, SCRIPT_COST, BASE
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8, help="seconds of each measured wrk run")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s, 2 cold starts")
    ap.add_argument("--with-next", action="store_true", help="also run the Next.js app")
    add_peer_args(ap)
    ap.add_argument("--no-build", action="store_true", help="(handled by run.sh)")
    ap.add_argument("--no-scenarios", action="store_true", help="skip RSS/cold start scenarios")
    ap.add_argument("--isolation-only", action="store_true",
                    help="only the isolation scenario (no rounds, no other scenario)")
    ap.add_argument("--routes", default="hello,echo,params,work,db,items")
    ap.add_argument("--cold-reps", type=int, default=5)
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--client-core", default="1")
    ap.add_argument("--out", default=os.path.join(BENCH, "out", "latest.md"))
    args = ap.parse_args()
    peers = resolve_peers(ap, args)
    if args.quick:
        args.rounds, args.duration, args.cold_reps = 1, 3, 2
    args.routes = [r for r in args.routes.split(",") if r] if not args.isolation_only else []
    for r in args.routes:
        if r not in ROUTES:
            ap.error("unknown route %r (known: %s)" % (r, ", ".join(ROUTES)))

    for path in (RHAPI, RAW, SCRIPT_COST):
        if not os.access(path, os.X_OK):
            sys.exit("missing %s: run bench/run.sh (it builds), or cargo build --release "
                     "--bin rhapi --examples" % path)
    check_peers(peers)
    if args.with_next and not os.path.exists(os.path.join(NEXT_APP, ".next", "BUILD_ID")):
        sys.exit("bench/next-app is not built: run bench/run.sh --with-next")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (bench/run.sh installs it)")

    # Run private copies: a cargo build in the shared target/ during the run must not swap the
    # binaries between rounds.
    bindir = tempfile.mkdtemp(prefix="rhapi-bench-bin-")
    for name in ("RHAPI", "RAW", "SCRIPT_COST") + (("BASE",) if BASE else ()):
        src = globals()[name]
        dst = os.path.join(bindir, name.lower() + "-" + os.path.basename(src))
        shutil.copy2(src, dst)
        globals()[name] = dst
    binary_age = datetime.datetime.fromtimestamp(os.path.getmtime(RHAPI)).strftime("%H:%M")
    base_info = (args.baseline, datetime.datetime.fromtimestamp(
        os.path.getmtime(BASE)).strftime("%Y-%m-%d %H:%M")) if BASE else None

    # Before pinning ourselves: nproc honours this process's affinity.
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    # The harness itself stays off the server's core.
    try:
        os.sched_setaffinity(0, {int(args.client_core)})
    except (AttributeError, OSError, ValueError):
        pass

    check = subprocess.run([RHAPI, "check", os.path.join(BENCH, "app")], capture_output=True,
                           text=True)
    if check.returncode != 0:
        sys.exit("rhapi check bench/app failed:\n" + check.stdout + check.stderr)

    variants = ["raw", "rhapi"] + (["base"] if BASE else []) + \
        (["next"] if args.with_next else []) + [p for p in PEERS if p in peers]
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip(),
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock")),
        "nproc": nproc,
        "cpu": "",
        "load_before": loadavg(),
        "binary_built": binary_age,
        "baseline": base_info,
    }
    meta["versions"] = peer_versions(variants)
    if float(meta["load_before"]) > 1.0:
        log("warning: load average is %s: something else is using the CPU" % meta["load_before"])
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.+)", f.read())
            meta["cpu"] = m.group(1).strip() if m else ""
    except OSError:
        pass

    extra = {}
    log("== script cost (work route, bare call)")
    extra["script"] = script_cost(args)
    log("   %.2f µs per call, %.2f µs with JSON" % extra["script"])

    if "db" in args.routes or "items" in args.routes or "bun" in variants:
        # Create and fill the SQLite file the servers read (migrations run once).
        subprocess.run([RHAPI, "migrate", os.path.join(BENCH, "app")], check=True,
                       capture_output=True)
    results = {r: {v: [] for v in variants} for r in args.routes}
    checked = set()
    tmpdir = tempfile.mkdtemp(prefix="rhapi-bench-lua-")
    try:
        luas = {r: lua_script(tmpdir, r) for r in args.routes}
        for rnd in range(args.rounds):
            for route in args.routes:
                # Rotate the order so no variant always runs first.
                here = variants_of(route, variants)
                order = here[rnd % len(here):] + here[:rnd % len(here)]
                for v in order:
                    res = one_run(args, v, route, luas[route], checked)
                    results[route][v].append(res)
                    log("round %d/%d %-6s %-7s %10.0f req/s  p50 %s  p99 %s  rss %s%s" % (
                        rnd + 1, args.rounds, route, v, res["rps"], fmt_us(res.get("p50")),
                        fmt_us(res.get("p99")), fmt_mib(res["rss_kib"]),
                        "  non-2xx %d" % res["non2xx"] if res["non2xx"] else "") +
                        ("  " + res["socket_errors"] if res["errors"] else ""))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

    if args.isolation_only:
        extra["isolation"] = scenario_isolation(args)
        meta["load_after"] = loadavg()
        print(build_report(args, meta, results, variants, extra))
        return
    if not args.no_scenarios:
        sc = []
        log("== idle RSS")
        for v in variants:
            sc.append(("RSS idle, %s, bench app (each route it has, served once)" % v,
                       fmt_mib(idle_rss(args, v))))
        log("== RSS with 100 route files")
        sc.append(("RSS rhapi, 100 generated route files, each served once",
                   fmt_mib(scenario_rss(args, 100))))
        log("== cold start")
        cold_small = scenario_cold(args, "rhapi", 0, args.cold_reps)
        sc.append(("cold start to first 200, rhapi, bench app (5 routes), median of %d"
                   % len(cold_small), "%.1f ms" % median(cold_small)))
        cold = scenario_cold(args, "rhapi", 1000, args.cold_reps)
        sc.append(("**cold start to first 200, rhapi, 1,000 route files, median of %d**"
                   % len(cold), "**%.1f ms** (all: %s)" % (
                       median(cold), ", ".join("%.0f" % x for x in cold))))
        if args.with_next:
            cold_next = scenario_cold(args, "next", 0, args.cold_reps)
            sc.append(("cold start to first 200, Next.js `next start`, 4 routes, median of %d"
                       % len(cold_next), "%.1f ms" % median(cold_next)))
        extra["scenarios"] = sc
        log("== isolation: hello while a runaway script runs")
        extra["isolation"] = scenario_isolation(args)

    meta["load_after"] = loadavg()
    shutil.rmtree(bindir, ignore_errors=True)
    report = build_report(args, meta, results, variants, extra)
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report + "\n")
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"meta": meta, "args": vars(args), "results": results,
                   "extra": extra}, f, indent=1)
    log("== report written to %s" % os.path.relpath(args.out, ROOT))


if __name__ == "__main__":
    main()

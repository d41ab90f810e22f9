#!/usr/bin/env python3
"""What rhapi's app features cost (stdlib only): public/ files against plain actix-files and
Bun.file, each `_middleware.rhai` level, and `[cors]`. Called by `bench/run.sh features`.

Every measured run starts a fresh server pinned to the server core (rhapi: `start --workers 1
--no-watch`), checks its answer, warms up with wrk for 1 s, then runs
`wrk -t1 -c32 -d<duration>s` on the client core (GET, no Accept-Encoding), and reads the
server's CPU time (utime + stime, /proc/PID/stat, with bench/run.py's cpu_seconds) before and
after: CPU/req = CPU time / requests served. A round runs every case of a group one after the
other, the order rotated per round; ratios are taken within a round, then the median over
rounds. Then, unless --no-instructions, callgrind counts user-space instructions per request
(as bench/instructions.py does) on the rhapi middleware and CORS cases and on the files for
rhapi and raw actix-files.

Groups (--groups, comma list; default all):
  files  GET /2k.css and /200k.css from a public/ folder: rhapi, raw actix-files
         (bench/raw_actix.rs with a third argument), Bun.file (bench/bun/files.js)
  mw     hello under 0, 1 and 3 levels of _middleware.rhai (bench/features-app/plain, mw1, mw3)
  cors   hello with [cors] (bench/features-app/cors) and without (plain), both requests sent
         with `Origin: https://app.example`

The report (Markdown) goes to stdout and bench/out/features.md, the figures to
bench/out/features.json.
"""

import argparse
import datetime
import glob
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (bench/run.py: servers, CPU time, wrk parsing, formatting)

log = R.log
APPS = os.path.join(R.BENCH, "features-app")
BUN_FILES = os.path.join(R.BENCH, "bun", "files.js")
ORIGIN = "https://app.example"
HELLO = {"message": "Hello from API route!"}
FILE_SIZES = {"2k": 2 * 1024, "200k": 200 * 1024}
GROUPS = ("files", "mw", "cors")


def file_bytes(size):
    """Deterministic text content (a stylesheet-like asset) of exactly `size` bytes."""
    line = b".c%05d { color: #%06x; margin: 0 auto; }\n"
    out, i = bytearray(), 0
    while len(out) < size:
        out += line % (i, (i * 2654435761) & 0xFFFFFF)
        i += 1
    return bytes(out[:size])


def make_files_app():
    """A temp rhapi app with public/2k.css and public/200k.css (and a hello route)."""
    root = tempfile.mkdtemp(prefix="rhapi-features-files-")
    os.makedirs(os.path.join(root, "public"))
    os.makedirs(os.path.join(root, "pages", "api"))
    shutil.copy(os.path.join(APPS, "plain", "pages", "api", "hello.rhai"),
                os.path.join(root, "pages", "api", "hello.rhai"))
    for name, size in FILE_SIZES.items():
        with open(os.path.join(root, "public", name + ".css"), "wb") as f:
            f.write(file_bytes(size))
    return root


# ---------------------------------------------------------------------------------------------
# cases: (group, label, server command maker, path, request headers, answer check)


def check_hello(expect_headers=(), absent=()):
    def check(status, headers, body):
        if status != 200 or json.loads(body) != HELLO:
            return "answered %d %r" % (status, body[:200])
        for k, v in expect_headers:
            if headers.get(k) != v:
                return "header %s is %r, expected %r" % (k, headers.get(k), v)
        for k in absent:
            if k in headers:
                return "unexpected header %s: %r" % (k, headers[k])
        return None
    return check


def check_file(size):
    want = file_bytes(size)

    def check(status, headers, body):
        if status != 200 or body != want:
            return "answered %d, %d bytes (expected 200, %d bytes)" % (status, len(body), size)
        if "content-encoding" in headers:
            return "compressed (%s) without Accept-Encoding" % headers["content-encoding"]
        return None
    return check


class Case:
    def __init__(self, group, name, label, kind, app, path, headers=(), check=None):
        self.group, self.name, self.label = group, name, label
        self.kind, self.app, self.path = kind, app, path  # kind: rhapi, raw, bun
        self.headers, self.check = list(headers), check


def cases(files_app, groups):
    out = []
    if "files" in groups:
        public = os.path.join(files_app, "public")
        for size_name, size in FILE_SIZES.items():
            g, path = "files-" + size_name, "/%s.css" % size_name
            for kind, label in (("rhapi", "rhapi public/"), ("raw", "actix-files"),
                                ("bun", "Bun.file")):
                out.append(Case(g, kind, label, kind, files_app if kind == "rhapi" else public,
                                path, check=check_file(size)))
    if "mw" in groups:
        plain, mw1, mw3 = (os.path.join(APPS, a) for a in ("plain", "mw1", "mw3"))
        lv = [("x-level-%d" % i, "1") for i in (1, 2, 3)]
        out += [
            Case("mw", "d1-0", "/api/a/hello, no middleware", "rhapi", plain, "/api/a/hello",
                 check=check_hello(absent=["x-level-1"])),
            Case("mw", "d1-1", "/api/a/hello, 1 level (pages/api/)", "rhapi", mw1,
                 "/api/a/hello", check=check_hello(lv[:1])),
            Case("mw", "d3-0", "/api/a/b/hello, no middleware", "rhapi", plain, "/api/a/b/hello",
                 check=check_hello(absent=["x-level-1"])),
            Case("mw", "d3-1", "/api/a/b/hello, 1 level (pages/api/)", "rhapi", mw1,
                 "/api/a/b/hello", check=check_hello(lv[:1], absent=["x-level-2"])),
            Case("mw", "d3-3", "/api/a/b/hello, 3 levels (api/, a/, a/b/)", "rhapi", mw3,
                 "/api/a/b/hello", check=check_hello(lv)),
        ]
    if "cors" in groups:
        origin = [("Origin", ORIGIN)]
        out += [
            Case("cors", "off", "/api/hello, no [cors]", "rhapi", os.path.join(APPS, "plain"),
                 "/api/hello", origin, check_hello(absent=["access-control-allow-origin"])),
            Case("cors", "on", "/api/hello, [cors] origins = [\"%s\"]" % ORIGIN, "rhapi",
                 os.path.join(APPS, "cors"), "/api/hello", origin,
                 check_hello([("access-control-allow-origin", ORIGIN), ("vary", "Origin")])),
        ]
    return out


# ---------------------------------------------------------------------------------------------
# processes


class Proc(R.Server):
    """A server from an explicit command, pinned to `core`; stop/rss as bench/run.py's."""

    def __init__(self, case, core, wrapper=()):
        self.variant = case.kind
        self.port = R.free_port()
        env = dict(os.environ)
        if case.kind == "rhapi":
            cmd = [R.RHAPI, "start", case.app, "--port", str(self.port), "--hostname",
                   "127.0.0.1", "--workers", "1", "--no-watch"]
        elif case.kind == "raw":
            cmd = [R.RAW, str(self.port), R.BENCH_DB, case.app]
        elif case.kind == "bun":
            cmd = [R.BUN, BUN_FILES, str(self.port), case.app]
            env["NODE_ENV"] = "production"
        else:
            raise ValueError(case.kind)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(["taskset", "-c", core] + list(wrapper) + cmd, cwd=R.ROOT,
                                     env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)


def get(port, path, headers, timeout=5.0, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        # skip_accept_encoding: no Accept-Encoding at all, as wrk sends.
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        if own:
            conn.close()


def wrk(args, port, case, duration):
    cmd = ["taskset", "-c", args.client_core, "wrk", "-t1", "-c%d" % args.connections,
           "-d%ds" % duration]
    for k, v in case.headers:
        cmd += ["-H", "%s: %s" % (k, v)]
    cmd.append("http://127.0.0.1:%d%s" % (port, case.path))
    return R.parse_wrk(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def one_run(args, case, checked):
    with Proc(case, args.server_core) as srv:
        R.wait_ready(srv.proc, srv.port, path=case.path)
        if (case.group, case.name) not in checked:
            err = case.check(*get(srv.port, case.path, case.headers))
            if err:
                raise RuntimeError("%s %s: %s" % (case.group, case.label, err))
            checked.add((case.group, case.name))
        wrk(args, srv.port, case, 1)
        before = R.cpu_seconds(srv.proc.pid)
        res = wrk(args, srv.port, case, args.duration)
        if res.get("requests"):
            res["cpu_us"] = (R.cpu_seconds(srv.proc.pid) - before) * 1e6 / res["requests"]
        res["rss_kib"] = srv.rss()
    return res


def instructions(args, case, tmp):
    """User-space instructions per request under callgrind, one keep-alive connection."""
    out = os.path.join(tmp, "%s-%s" % (case.group, case.name))
    wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.%%p" % out]
    with Proc(case, args.server_core, wrapper) as srv:
        R.wait_ready(srv.proc, srv.port, path=case.path, timeout=120)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        try:
            def send(n):
                for _ in range(n):
                    status, _, _ = get(srv.port, case.path, case.headers, conn=conn)
                    if status != 200:
                        raise RuntimeError("%s answered %d" % (case.path, status))
            send(200)
            pid = str(srv.proc.pid)
            subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
            send(args.requests)
            subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
        finally:
            conn.close()
        deadline, dumps = time.time() + 30, []
        while not dumps and time.time() < deadline:
            dumps = glob.glob("%s.%s.1" % (out, pid))
            time.sleep(0.1)
        if not dumps:
            raise RuntimeError("callgrind wrote no dump for %s %s" % (case.group, case.name))
        with open(dumps[0]) as f:
            for line in f:
                if line.startswith("summary:"):
                    return int(line.split()[1]) / args.requests
    raise RuntimeError("no summary line in %s" % dumps[0])


# ---------------------------------------------------------------------------------------------
# report


def med(results, g, n, key):
    return R.median([r.get(key) for r in results.get(g, {}).get(n, [])])


def per_round(results, g, fn):
    """Median over rounds of fn(round's results by case name)."""
    by = results.get(g, {})
    rounds = min((len(v) for v in by.values()), default=0)
    vals = []
    for i in range(rounds):
        try:
            vals.append(fn({n: by[n][i] for n in by}))
        except (KeyError, TypeError, ZeroDivisionError):
            pass
    return R.median(vals)


def fmt_d(us):
    return "–" if us is None else "%+.2f µs" % us


def fmt_i(x):
    return "–" if x is None else "{:,.0f}".format(x)


def fmt_di(x):
    return "–" if x is None else "{:+,.0f}".format(x)


def flags(results, g, n):
    bad = sum(r["non2xx"] + r["errors"] for r in results.get(g, {}).get(n, []))
    return " (%d failed)" % bad if bad else ""


def report(args, meta, all_cases, results, instr):
    L = []
    L.append("# rhapi features: public/ files, middleware levels, CORS")
    L.append("")
    L.append("%s, commit %s%s, rhapi binary built %s; %s cores (%s); load average %s before, "
             "%s after. %d rounds x %d s per case, wrk -t1 -c%d, no Accept-Encoding, server on "
             "core %s, wrk on core %s. Bun %s." % (
                 meta["date"], meta["commit"], " (src/ dirty)" if meta["dirty"] else "",
                 meta["binary_built"], meta["nproc"], meta["cpu"], meta["load_before"],
                 meta["load_after"], args.rounds, args.duration, args.connections,
                 args.server_core, args.client_core, meta["bun"]))
    L.append("")
    L.append("Figures from one run; compare the ratios, not absolute req/s across runs (a shared "
             "VM). CPU/req: the server's utime + stime during the measured run / requests "
             "served. Instructions: user-space, callgrind, %d requests on one keep-alive "
             "connection after 200 warm-up; kernel time is not in them." % args.requests)
    groups = [g for g in dict.fromkeys(c.group for c in all_cases)]

    files = [g for g in groups if g.startswith("files-")]
    if files:
        L += ["", "## public/ files (GET, no compression)", "",
              "| file | server | req/s | vs actix-files | vs Bun | CPU/req | instructions/req "
              "| per-round req/s |", "|---|---|--:|--:|--:|--:|--:|---|"]
        for g in files:
            for c in (c for c in all_cases if c.group == g):
                rps = med(results, g, c.name, "rps")
                vr = per_round(results, g, lambda r, n=c.name: r[n]["rps"] / r["raw"]["rps"])
                vb = per_round(results, g, lambda r, n=c.name: r[n]["rps"] / r["bun"]["rps"])
                L.append("| %s | %s%s | %s | %s | %s | %s | %s | %s |" % (
                    g[6:].upper().replace("K", " KB"), c.label, flags(results, g, c.name),
                    R.fmt_rps(rps) if rps else "–",
                    "%.2f" % vr if vr else "–", "%.2f" % vb if vb else "–",
                    R.fmt_cpu(med(results, g, c.name, "cpu_us")),
                    fmt_i(instr.get((g, c.name))),
                    ", ".join(R.fmt_rps(r["rps"]) for r in results[g][c.name])))

    if "mw" in groups:
        L += ["", "## _middleware.rhai levels (each sets one header)", "",
              "| route | req/s | CPU/req | vs no middleware, same depth | instructions/req "
              "| per-round CPU/req |", "|---|--:|--:|--:|--:|---|"]
        ctrl = {"d1-0": "d1-0", "d1-1": "d1-0", "d3-0": "d3-0", "d3-1": "d3-0", "d3-3": "d3-0"}
        for c in (c for c in all_cases if c.group == "mw"):
            d = per_round(results, "mw", lambda r, n=c.name: r[n]["cpu_us"] - r[ctrl[n]]["cpu_us"])
            L.append("| %s%s | %s | %s | %s | %s | %s |" % (
                c.label, flags(results, "mw", c.name),
                R.fmt_rps(med(results, "mw", c.name, "rps")),
                R.fmt_cpu(med(results, "mw", c.name, "cpu_us")),
                "–" if c.name == ctrl[c.name] else fmt_d(d), fmt_i(instr.get(("mw", c.name))),
                ", ".join("%.2f" % r["cpu_us"] for r in results["mw"][c.name])))

        def level(a, b, n):
            cpu = per_round(results, "mw", lambda r: (r[a]["cpu_us"] - r[b]["cpu_us"]) / n)
            ia, ib = instr.get(("mw", a)), instr.get(("mw", b))
            return cpu, (ia - ib) / n if ia and ib else None
        L += ["", "**Cost per middleware level** (goal: at most 1.5 µs of CPU per request):", "",
              "| measured as | CPU µs per level | instructions per level |", "|---|--:|--:|"]
        for label, a, b, n in (("(3 levels − none) / 3, at /api/a/b/hello", "d3-3", "d3-0", 3),
                               ("(3 levels − 1 level) / 2, at /api/a/b/hello", "d3-3", "d3-1", 2),
                               ("1 level − none, at /api/a/b/hello", "d3-1", "d3-0", 1),
                               ("1 level − none, at /api/a/hello", "d1-1", "d1-0", 1)):
            cpu, ins = level(a, b, n)
            L.append("| %s | %s | %s |" % (label, fmt_d(cpu), fmt_di(ins)))
        L.append("")
        L.append("CPU figures: median over rounds of the within-round difference; the "
                 "per-round column shows their noise (several µs when the load average is "
                 "above 1). The instruction counts repeat to within a few hundred between runs: "
                 "trust them for the per-level cost.")

    if "cors" in groups:
        L += ["", "## [cors] (requests carry `Origin: %s`)" % ORIGIN, "",
              "| case | req/s | CPU/req | instructions/req | per-round req/s |",
              "|---|--:|--:|--:|---|"]
        for c in (c for c in all_cases if c.group == "cors"):
            L.append("| %s%s | %s | %s | %s | %s |" % (
                c.label, flags(results, "cors", c.name),
                R.fmt_rps(med(results, "cors", c.name, "rps")),
                R.fmt_cpu(med(results, "cors", c.name, "cpu_us")),
                fmt_i(instr.get(("cors", c.name))),
                ", ".join(R.fmt_rps(r["rps"]) for r in results["cors"][c.name])))
        ratio = per_round(results, "cors", lambda r: r["on"]["rps"] / r["off"]["rps"])
        d = per_round(results, "cors", lambda r: r["on"]["cpu_us"] - r["off"]["cpu_us"])
        ion, ioff = instr.get(("cors", "on")), instr.get(("cors", "off"))
        L += ["", "CORS on / off: req/s %s, CPU/req %s, instructions %s." % (
            "%.3f" % ratio if ratio else "–", fmt_d(d),
            "%s (%+.1f%%)" % (fmt_di(ion - ioff), 100.0 * (ion - ioff) / ioff)
            if ion and ioff else "–")]
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--requests", type=int, default=2000, help="callgrind requests per case")
    ap.add_argument("--no-instructions", action="store_true")
    ap.add_argument("--quick", action="store_true", help="1 round x 2 s, 500 callgrind requests")
    ap.add_argument("--no-build", action="store_true", help="accepted (run.sh builds)")
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--client-core", default="1")
    ap.add_argument("--out", default=os.path.join(R.BENCH, "out", "features.md"))
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration, args.requests = 1, 2, 500
    groups = [g for g in args.groups.split(",") if g]
    for g in groups:
        if g not in GROUPS:
            ap.error("unknown group %r (known: %s)" % (g, ", ".join(GROUPS)))
    need = [R.RHAPI] + ([R.RAW, R.BUN] if "files" in groups else [])
    for path in need:
        if not os.access(path, os.X_OK):
            sys.exit("missing %s: bench/run.sh features builds rhapi and raw-actix and installs "
                     "Bun" % path)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (bench/run.sh installs it)")
    do_instr = not args.no_instructions
    if do_instr and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        log("valgrind is not installed: no instruction counts (apt-get install valgrind)")
        do_instr = False

    # Private copies: a cargo build in target/ during the run must not swap the binaries.
    bindir = tempfile.mkdtemp(prefix="rhapi-features-bin-")
    binary_built = datetime.datetime.fromtimestamp(os.path.getmtime(R.RHAPI)).strftime("%H:%M")
    for name in ("RHAPI", "RAW"):
        src = getattr(R, name)
        if os.path.exists(src):
            dst = os.path.join(bindir, os.path.basename(src))
            shutil.copy2(src, dst)
            setattr(R, name, dst)

    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    try:
        os.sched_setaffinity(0, {int(args.client_core)})
    except (AttributeError, OSError, ValueError):
        pass
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip(),
        "commit": R.git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(R.git("status", "--porcelain", "--", "src")),
        "nproc": nproc, "cpu": "", "load_before": R.loadavg(), "binary_built": binary_built,
        "bun": "–",
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    meta["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if "files" in groups:
        meta["bun"] = subprocess.run([R.BUN, "--version"], capture_output=True,
                                     text=True).stdout.strip()
    if float(meta["load_before"]) > 1.0:
        log("warning: load average is %s: something else is using the CPU" % meta["load_before"])
    for app in ("plain", "mw1", "mw3", "cors"):
        chk = subprocess.run([R.RHAPI, "check", os.path.join(APPS, app)], capture_output=True,
                             text=True)
        if chk.returncode != 0:
            sys.exit("rhapi check bench/features-app/%s failed:\n%s%s" % (app, chk.stdout,
                                                                           chk.stderr))

    files_app = make_files_app()
    tmp = tempfile.mkdtemp(prefix="rhapi-features-cg-")
    results, instr, checked = {}, {}, set()
    try:
        all_cases = cases(files_app, groups)
        by_group = {}
        for c in all_cases:
            by_group.setdefault(c.group, []).append(c)
        for rnd in range(args.rounds):
            for g, cs in by_group.items():
                order = cs[rnd % len(cs):] + cs[:rnd % len(cs)]
                for c in order:
                    res = one_run(args, c, checked)
                    results.setdefault(g, {}).setdefault(c.name, []).append(res)
                    log("round %d/%d %-9s %-5s %10.0f req/s  %6.2f µs CPU/req%s" % (
                        rnd + 1, args.rounds, g, c.name, res["rps"], res.get("cpu_us") or 0,
                        "  failed %d" % (res["non2xx"] + res["errors"])
                        if res["non2xx"] + res["errors"] else ""))
        # Keep the per-case lists in case order (the first round's order).
        for g, cs in by_group.items():
            results[g] = {c.name: results[g][c.name] for c in cs}
        if do_instr:
            for c in all_cases:
                if c.kind == "bun":
                    continue  # a JIT under valgrind counts mostly the JIT
                instr[(c.group, c.name)] = instructions(args, c, tmp)
                log("callgrind %-9s %-5s %12.0f instructions/req" % (
                    c.group, c.name, instr[(c.group, c.name)]))
        meta["load_after"] = R.loadavg()
        text = report(args, meta, all_cases, results, instr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(files_app, ignore_errors=True)
        shutil.rmtree(bindir, ignore_errors=True)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text + "\n")
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"meta": meta, "args": vars(args), "results": results,
                   "instructions": {"%s/%s" % k: v for k, v in instr.items()}}, f, indent=1)
    log("== report written to %s" % os.path.relpath(args.out, R.ROOT))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""WebSockets and publish/subscribe: rhapi against Bun, side by side in one run.

Run through `bench/run.sh realtime` (it builds, installs Bun, raises the open-files limit), or
directly after `cargo build --release --bin rhapi --example ws-load`:

    python3 bench/realtime.py [--scenarios idle,echo,fanout,storm,remote] [--quick]

Each server runs pinned to core 0 (rhapi: `start bench/realtime/app --workers 1`; Bun:
`bench/realtime/bun.js`), fresh for every scenario; the load client `ws-load`
(bench/ws_load.rs) runs on core 1. See bench/README.md, "Realtime", for what each scenario
measures. The report goes to stdout and bench/out/realtime.md, the figures to
bench/out/realtime.json. Python 3 stdlib only.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (bench/run.py: ports, readiness, RSS)

APP = os.path.join(R.BENCH, "realtime", "app")
BUN_WS = os.path.join(R.BENCH, "realtime", "bun.js")
WS_LOAD = os.path.join(R.ROOT, "target", "release", "examples", "ws-load")
OUT = os.path.join(R.BENCH, "out")

TARGETS = {
    "idle": "rhapi bytes/conn <= 1.0x Bun's",
    "echo": "rhapi msg/s >= 0.8x Bun's",
    "fanout": "rhapi delivered/s >= 1.0x Bun's",
    "storm": "hello p99 < 10 ms during the storm",
    "remote": "(no target: latency A -> B)",
}

log = R.log


class Proc:
    """A server in its own session on `core`: rhapi on an app folder, or Bun on bun.js."""

    def __init__(self, variant, core, app=APP, env=None):
        self.variant, self.port = variant, R.free_port()
        if variant == "rhapi":
            cmd = [R.RHAPI, "start", app, "--port", str(self.port), "--hostname", "127.0.0.1",
                   "--workers", "1", "--no-watch"]
        else:
            cmd = [R.BUN, BUN_WS, str(self.port)]
        full_env = dict(os.environ, NODE_ENV="production", **(env or {}))
        self.proc = subprocess.Popen(["taskset", "-c", core] + cmd, cwd=R.ROOT, env=full_env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            R.wait_ready(self.proc, self.port)
        except Exception:
            self.stop()
            raise

    def rss(self):
        return R.rss_kib(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def client(args, *argv, nice=0):
    """Starts ws-load on the client core; its stdout is a pipe of JSON lines."""
    cmd = ["taskset", "-c", args.client_core] + (["nice", "-n", str(nice)] if nice else [])
    return subprocess.Popen(cmd + [WS_LOAD] + [str(a) for a in argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def line(proc, timeout=600):
    """The next JSON line of a client (None if it ended without one)."""
    out = proc.stdout.readline()
    if not out:
        proc.wait(timeout=timeout)
        log("  client ended without a result:", proc.stderr.read()[-2000:])
        return None
    return json.loads(out)


def run_client(args, *argv):
    proc = client(args, *argv)
    try:
        return line(proc)
    finally:
        stop_client(proc)


def stop_client(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


# ---------------------------------------------------------------------------------------------
# scenarios: each takes (args, variant) and returns a dict of figures


def scenario_idle(args, variant):
    with Proc(variant, args.server_core) as srv:
        # Warm the allocator and the upgrade path with a few sockets, then the baseline.
        run_client(args, "idle", "--port", srv.port, "--path", "/api/echo", "--conns", 200,
                   "--hold-secs", 1)
        time.sleep(1.0)
        before = srv.rss()
        proc = client(args, "idle", "--port", srv.port, "--path", "/api/echo", "--conns",
                      args.conns, "--hold-secs", 60)
        try:
            opened = line(proc)
            time.sleep(2.0)
            after = srv.rss()
            # Still serving: one hello while they are held.
            status, _ = R.http_request(srv.port, "GET", "/api/hello")
        finally:
            stop_client(proc)
    n = (opened or {}).get("opened", 0)
    return {"rss_before_kib": before, "rss_after_kib": after, "opened": n,
            "failed": (opened or {}).get("failed"), "error": (opened or {}).get("error"),
            "open_secs": (opened or {}).get("open_secs"), "hello_status": status,
            "bytes_per_conn": (after - before) * 1024 / n if n else None}


def measured(srv, args, *argv):
    """Runs a client that prints {"ready":N} before its load, and the server's CPU seconds
    (user + system) from then to the client's result."""
    proc = client(args, *argv)
    try:
        line(proc)
        cpu = R.cpu_seconds(srv.proc.pid)
        res = line(proc) or {}
        res["server_cpu_s"] = R.cpu_seconds(srv.proc.pid) - cpu
    finally:
        stop_client(proc)
    res["rss_kib"] = srv.rss()
    return res


def scenario_echo(args, variant):
    with Proc(variant, args.server_core) as srv:
        res = measured(srv, args, "echo", "--port", srv.port, "--path", "/api/echo", "--conns",
                       args.echo_conns, "--window", args.echo_window, "--secs", args.echo_secs,
                       "--size", 32)
    # Every reply since "ready", the warm-up second included.
    res["cpu_us_per_msg"] = 1e6 * res["server_cpu_s"] / res["all"] if res.get("all") else None
    return res


def scenario_fanout(args, variant):
    with Proc(variant, args.server_core) as srv:
        res = measured(srv, args, "fanout", "--port", srv.port, "--path", "/api/sub?topic=t",
                       "--conns", args.conns, "--publishes", args.publishes,
                       "--publish-path", "/api/publish?topic=t")
    d = res.get("delivered")
    res["cpu_us_per_delivery"] = 1e6 * res["server_cpu_s"] / d if d else None
    return res


def scenario_storm(args, variant):
    with Proc(variant, args.server_core) as srv:
        alone = run_client(args, "hello", "--port", srv.port, "--secs", args.storm_secs,
                           "--every-ms", 5)
        # The storm client is niced so that the hello prober, sharing its core, is not
        # starved by it: what the prober sees is the server's delay.
        storm = client(args, "storm", "--port", srv.port, "--path", "/api/sub?topic=t",
                       "--conns", args.conns, "--secs", args.storm_secs + 2, "--every-ms",
                       args.storm_every_ms, "--publish-path", "/api/publish?topic=t", nice=10)
        try:
            ready = line(storm)
            loaded = run_client(args, "hello", "--port", srv.port, "--secs", args.storm_secs,
                                "--every-ms", 5)
            result = line(storm)
        finally:
            stop_client(storm)
        rss = srv.rss()
    return {"alone": alone, "loaded": loaded, "storm": result, "ready": ready, "rss_kib": rss}


def make_pg_app(tmp, url):
    app = os.path.join(tmp, "remote-app")
    shutil.copytree(APP, app)
    with open(os.path.join(app, ".env"), "w") as f:
        f.write("DATABASE_URL=%s\n" % url)
    return app


def scenario_remote(args, variant):
    if variant != "rhapi":
        return {"skipped": "rhapi only (two instances on one PostgreSQL)"}
    url = os.environ.get("RHAPI_BENCH_PG_URL") or os.environ.get("RHAPI_TEST_POSTGRES_URL")
    if not url:
        return {"skipped": "no RHAPI_BENCH_PG_URL / RHAPI_TEST_POSTGRES_URL"}
    with tempfile.TemporaryDirectory(prefix="rhapi-realtime-") as tmp:
        app = make_pg_app(tmp, url)
        with Proc("rhapi", args.server_core, app=app) as a, \
                Proc("rhapi", args.server_core, app=app) as b:
            # A topic of this run's own: other apps may publish on the same database.
            topic = "bench%d" % os.getpid()
            res = measured(b, args, "fanout", "--port", b.port, "--path", "/api/sub?topic=" + topic,
                             "--conns", args.remote_conns, "--publishes", args.publishes,
                             "--publish-port", a.port, "--publish-path", "/api/publish?topic=" + topic,
                             "--timeout-secs", 3)
    return res


SCENARIOS = {"idle": scenario_idle, "echo": scenario_echo, "fanout": scenario_fanout,
             "storm": scenario_storm, "remote": scenario_remote}


# ---------------------------------------------------------------------------------------------
# report


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.*f" % (digits, v)
    return str(v)


def ratio(a, b):
    return a / b if a and b else None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def report(args, meta, results):
    """results[scenario][variant] = list of per-round dicts."""
    out = ["# Realtime: WebSockets and publish/subscribe, rhapi vs Bun", "",
           "- date: %s" % meta["date"], "- machine: %s" % meta["machine"],
           "- load average before / after: %s / %s" % (meta["load_before"], meta["load_after"]),
           "- rounds: %d; subscribers/idle sockets: %d" % (args.rounds, args.conns), ""]
    verdicts = []

    def per_round(scn, key_fn):
        r = results.get(scn, {})
        return [key_fn(x) for x in r.get("rhapi", [])], [key_fn(x) for x in r.get("bun", [])]

    def paired(a, b, fn):
        return median([fn(x, y) for x, y in zip(a, b) if x is not None and y is not None])

    if "idle" in results:
        rh, bn = per_round("idle", lambda x: x.get("bytes_per_conn"))
        rr = paired(rh, bn, lambda x, y: x / y)
        out += ["## 1. %d idle WebSockets" % args.conns, "",
                "| server | opened | RSS before KiB | RSS after KiB | bytes per connection |",
                "|---|---|---|---|---|"]
        for v in ("rhapi", "bun"):
            for x in results["idle"].get(v, []):
                out.append("| %s | %s | %s | %s | %s |" % (v, x["opened"], x["rss_before_kib"],
                                                        x["rss_after_kib"], fmt(x["bytes_per_conn"], 0)))
        out += ["", "rhapi / Bun bytes per connection: **%s** (target <= 1.0)" % fmt(rr, 3), ""]
        verdicts.append(("idle bytes/conn rhapi/Bun", rr, rr is not None and rr <= 1.0))

    if "echo" in results:
        rh, bn = per_round("echo", lambda x: x.get("per_sec"))
        rr = paired(rh, bn, lambda x, y: x / y)
        out += ["## 2. Echo, %d connections, window %d, %d s" % (args.echo_conns, args.echo_window,
                                                                args.echo_secs), "",
                "| server | messages/s | server CPU µs per message | failed | RSS KiB |",
                "|---|---|---|---|---|"]
        for v in ("rhapi", "bun"):
            for x in results["echo"].get(v, []):
                out.append("| %s | %s | %s | %s | %s |" % (
                    v, fmt(x.get("per_sec"), 0), fmt(x.get("cpu_us_per_msg"), 2), x.get("failed"),
                    x.get("rss_kib")))
        rc, bc = per_round("echo", lambda x: x.get("cpu_us_per_msg"))
        cr = paired(bc, rc, lambda x, y: x / y)
        out += ["", "rhapi / Bun messages/s: **%s** (target >= 0.8); Bun's CPU per message / "
                "rhapi's: %s (the same ratio measured in CPU, blind to other processes on "
                "the core)" % (fmt(rr, 3), fmt(cr, 3)), ""]
        verdicts.append(("echo msg/s rhapi/Bun", rr, rr is not None and rr >= 0.8))

    if "fanout" in results:
        rh, bn = per_round("fanout", lambda x: x.get("delivered_per_sec"))
        rr = paired(rh, bn, lambda x, y: x / y)
        out += ["## 3. Fan-out: %d subscribers, %d publishes one after another" % (args.conns,
                                                                               args.publishes), "",
                "| server | delivered/s | server CPU µs per delivery | delivered / expected | closed | "
                "last delivery p50 / p99 / max ms | each delivery p50 / p99 ms | RSS KiB |",
                "|---|---|---|---|---|---|---|---|"]
        for v in ("rhapi", "bun"):
            for x in results["fanout"].get(v, []):
                out.append("| %s | %s | %s | %s / %s | %s | %s / %s / %s | %s / %s | %s |" % (
                    v, fmt(x.get("delivered_per_sec"), 0), fmt(x.get("cpu_us_per_delivery"), 2),
                    x.get("delivered"), x.get("expected"),
                    x.get("closed"), fmt(x.get("last_p50_ms"), 2), fmt(x.get("last_p99_ms"), 2),
                    fmt(x.get("last_max_ms"), 2), fmt(x.get("each_p50_ms"), 2),
                    fmt(x.get("each_p99_ms"), 2), x.get("rss_kib")))
        rc, bc = per_round("fanout", lambda x: x.get("cpu_us_per_delivery"))
        cr = paired(bc, rc, lambda x, y: x / y)
        out += ["", "rhapi / Bun delivered/s: **%s** (target >= 1.0); Bun's CPU per delivery / "
                "rhapi's: %s" % (fmt(rr, 3), fmt(cr, 3)), ""]
        verdicts.append(("fanout delivered/s rhapi/Bun", rr, rr is not None and rr >= 1.0))

    if "storm" in results:
        out += ["## 5. hello during a publish storm to %d sockets (a publish every %d ms)" % (
            args.conns, args.storm_every_ms), "",
            "| server | hello p50 / p99 / max ms alone | hello p50 / p99 / max ms in the storm | "
            "publishes done | POST p50 / p99 ms | messages delivered | sockets closed |",
            "|---|---|---|---|---|---|---|"]
        for v in ("rhapi", "bun"):
            for x in results["storm"].get(v, []):
                a, ld, s = x.get("alone") or {}, x.get("loaded") or {}, x.get("storm") or {}
                out.append("| %s | %s / %s / %s | %s / %s / %s | %s | %s / %s | %s | %s |" % (
                    v, fmt(a.get("hello_p50_ms"), 2), fmt(a.get("hello_p99_ms"), 2),
                    fmt(a.get("hello_max_ms"), 2), fmt(ld.get("hello_p50_ms"), 2),
                    fmt(ld.get("hello_p99_ms"), 2), fmt(ld.get("hello_max_ms"), 2),
                    s.get("published"), fmt(s.get("post_p50_ms"), 2), fmt(s.get("post_p99_ms"), 2),
                    s.get("delivered"), s.get("closed")))
        p99 = median([get(x, "loaded", "hello_p99_ms") for x in results["storm"].get("rhapi", [])])
        bp99 = median([get(x, "loaded", "hello_p99_ms") for x in results["storm"].get("bun", [])])
        out += ["", "rhapi hello p99 in the storm: **%s ms** (Bun: %s ms; target < 10 ms)" % (
            fmt(p99, 2), fmt(bp99, 2)), ""]
        verdicts.append(("storm hello p99 ms (rhapi)", p99, p99 is not None and p99 < 10))

    if "remote" in results:
        out += ["## 4. Two rhapi instances on one PostgreSQL: publish on A, %d subscribers on B"
                % args.remote_conns, ""]
        for x in results["remote"].get("rhapi", []):
            if "skipped" in x:
                out.append("skipped: %s" % x["skipped"])
                continue
            out.append("delivered %s / %s, closed %s; each delivery p50 / p99 / max: %s / %s / %s "
                       "ms; last delivery of a publish p50 / p99: %s / %s ms" % (
                           x.get("delivered"), x.get("expected"), x.get("closed"),
                           fmt(x.get("each_p50_ms"), 2), fmt(x.get("each_p99_ms"), 2),
                           fmt(x.get("each_max_ms"), 2), fmt(x.get("last_p50_ms"), 2),
                           fmt(x.get("last_p99_ms"), 2)))
        out.append("")

    out += ["## Targets", "", "| figure | value | met |", "|---|---|---|"]
    for name, value, ok in verdicts:
        out.append("| %s | %s | %s |" % (name, fmt(value, 3), "yes" if ok else "**no**"))
    return "\n".join(out) + "\n"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenarios", default="idle,echo,fanout,storm,remote")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--conns", type=int, default=10_000, help="idle sockets, subscribers")
    p.add_argument("--echo-conns", type=int, default=100)
    p.add_argument("--echo-window", type=int, default=1)
    p.add_argument("--echo-secs", type=int, default=10)
    p.add_argument("--publishes", type=int, default=30)
    p.add_argument("--storm-secs", type=int, default=10)
    p.add_argument("--storm-every-ms", type=int, default=1)
    p.add_argument("--remote-conns", type=int, default=1_000)
    p.add_argument("--no-bun", action="store_true")
    p.add_argument("--quick", action="store_true", help="1,000 sockets, 3 s runs")
    p.add_argument("--server-core", default="0")
    p.add_argument("--client-core", default="1")
    p.add_argument("--out", default=os.path.join(OUT, "realtime.md"))
    args = p.parse_args()
    if args.quick:
        args.conns, args.echo_secs, args.storm_secs, args.publishes = 1000, 3, 3, 10
    for path in (R.RHAPI, WS_LOAD) + (() if args.no_bun else (R.BUN,)):
        if not os.path.exists(path):
            sys.exit("missing %s (bench/run.sh realtime builds and installs it)" % path)
    variants = ["rhapi"] + ([] if args.no_bun else ["bun"])
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": "%d cores, %s" % (os.cpu_count(), os.uname().release),
            "load_before": loadavg()}
    results = {}
    for rnd in range(args.rounds):
        for scn in [s for s in args.scenarios.split(",") if s]:
            order = variants if rnd % 2 == 0 else variants[::-1]
            for v in order:
                log("== round %d, %s, %s" % (rnd + 1, scn, v))
                try:
                    res = SCENARIOS[scn](args, v)
                except Exception as err:  # one failed run must not lose the others
                    log("  failed:", err)
                    res = {"error": str(err)}
                log("  ", json.dumps(res))
                results.setdefault(scn, {}).setdefault(v, []).append(res)
    meta["load_after"] = loadavg()
    text = report(args, meta, results)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"meta": meta, "args": vars(args), "results": results}, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()

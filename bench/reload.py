#!/usr/bin/env python3
"""Hot-reload latency of `rhapi dev` (stdlib only).

Starts `rhapi dev` on a temp app with one route, then N times (default 50): rewrites the route
file with a new version marker and polls GET in a tight loop (one keep-alive connection) until
the response carries the new marker. Even iterations write the file in place (open, write,
close); odd ones write a temp file in the same folder and rename it over the route, as editors
do on an atomic save. Reports the median, p90 and max milliseconds from the write to the first
response that shows the new version, per mode and overall.

Run from the repo root after a release build:  bench/run.sh reload   or   python3 bench/reload.py
Options: --iterations N  --pause-ms MS (idle time between edits)  --binary PATH  --out FILE
"""

import argparse
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source(version):
    return ('// reload benchmark route\n'
            'fn GET(req, res) { res.status(200).json(#{ version: "%s" }); }\n' % version)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Poller:
    """GET over one keep-alive connection, reconnecting when needed."""

    def __init__(self, port, path):
        self.port, self.path, self.conn = port, path, None

    def get(self):
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                self.conn.request("GET", self.path)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return None, b""


def version_of(status, body):
    if status != 200:
        return None
    try:
        return json.loads(body).get("version")
    except ValueError:
        return None


def write_plain(path, text):
    with open(path, "w") as f:
        f.write(text)


def write_rename(path, text, i):
    # A dot-file is never a route, so the temp file itself is ignored by the router.
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp%d" % (os.path.basename(path), i))
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--pause-ms", type=float, default=200,
                    help="idle time after each version is seen, before the next edit")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for one reload")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "rhapi"))
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--client-core", default="1")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "reload.md"))
    ap.add_argument("--no-build", action="store_true", help="(handled by run.sh)")
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit("missing %s: cargo build --release --bin rhapi" % args.binary)
    # Before pinning ourselves: nproc honours this process's affinity.
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    try:
        os.sched_setaffinity(0, {int(args.client_core)})
    except (AttributeError, OSError, ValueError):
        pass

    app = tempfile.mkdtemp(prefix="rhapi-reload-")
    route = os.path.join(app, "pages", "api", "ver.rhai")
    os.makedirs(os.path.dirname(route))
    write_plain(route, source("v0"))
    port = free_port()
    cmd = ["taskset", "-c", args.server_core, args.binary, "dev", app, "--port", str(port)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    poller = Poller(port, "/api/ver")
    times = {"write": [], "rename": []}
    polls = []
    failures = []
    try:
        deadline = time.perf_counter() + 30
        while version_of(*poller.get()) != "v0":
            if proc.poll() is not None or time.perf_counter() > deadline:
                sys.exit("rhapi dev did not serve /api/ver (exit code %s)" % proc.poll())
            time.sleep(0.01)
        time.sleep(0.5)  # let the watcher settle after start-up

        for i in range(1, args.iterations + 1):
            marker = "v%d" % i
            mode = "write" if i % 2 == 0 else "rename"
            t0 = time.perf_counter()
            if mode == "write":
                write_plain(route, source(marker))
            else:
                write_rename(route, source(marker), i)
            n = 0
            while True:
                n += 1
                seen = version_of(*poller.get())
                now = time.perf_counter()
                if seen == marker:
                    ms = (now - t0) * 1000.0
                    times[mode].append(ms)
                    polls.append(n)
                    break
                if now - t0 > args.timeout:
                    failures.append((i, mode, seen))
                    break
            print("%2d %-6s %8.1f ms  (%d polls)" % (
                i, mode, (now - t0) * 1000.0 if seen == marker else float("nan"), n),
                file=sys.stderr, flush=True)
            time.sleep(args.pause_ms / 1000.0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(app, ignore_errors=True)

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = ["# rhapi dev hot-reload latency, %s" % datetime.datetime.now().strftime(
                 "%Y-%m-%d %H:%M"),
             "",
             "- commit `%s`; `nproc` = %s; %d edits, %.0f ms apart; server on core %s, "
             "poller (one keep-alive connection, tight loop) on core %s" % (
                 commit, nproc, args.iterations, args.pause_ms, args.server_core,
                 args.client_core),
             "- time from the start of the write to the first response carrying the new version",
             "",
             "| save mode | edits | median | p90 | max |",
             "|---|--:|--:|--:|--:|"]
    for label, xs in (("plain write", times["write"]), ("temp file + rename", times["rename"]),
                      ("all", times["write"] + times["rename"])):
        if xs:
            lines.append("| %s | %d | %.1f ms | %.1f ms | %.1f ms |" % (
                label, len(xs), statistics.median(xs), pct(xs, 90), max(xs)))
    if polls:
        lines.append("")
        lines.append("- requests per edit until the new version showed: median %d, max %d" % (
            statistics.median(polls), max(polls)))
    if failures:
        lines.append("- **%d edit(s) not seen within %.0f s**: %s" % (
            len(failures), args.timeout, ", ".join("#%d %s (last saw %s)" % f for f in failures)))
    report = "\n".join(lines)
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report + "\n")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

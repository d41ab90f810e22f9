#!/usr/bin/env python3
"""User-space instructions per request, counted by valgrind's callgrind: rhapi against raw
actix-web on the bench routes.

Throughput on a shared VM moves by 10% between runs, so a change worth 2% cannot be seen with
wrk. Instruction counts do not move: run this before and after a change to the request path.
They leave out the kernel (about half of a small request's time) and cache effects, so they
tell whether a change helps, not by how much in req/s.

For each route and server: start the server under callgrind (pinned to the server core),
send 200 warm-up requests on one keep-alive connection, zero the counters, send --requests
more, dump the counters, and divide. Both servers' answers are checked as in run.py.

Run from the repository root after `cargo build --release --bin rhapi --examples`:
    python3 bench/instructions.py [--routes hello,params] [--requests 2000]
Needs valgrind (`apt-get install valgrind`). bench/run.sh instructions builds and installs it.
"""

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: routes, servers, answer checks)

WARMUP = 200


def keep_alive_requests(port, route, n):
    method, path, body = run.ROUTES[route]
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(n):
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError("%s answered %d" % (path, resp.status))
    finally:
        conn.close()


def summary(dump):
    with open(dump) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("no summary line in %s" % dump)


def counted(proc, out, send, wait=60):
    """Zeroes the counters of the server `proc` runs under callgrind (its dumps go to
    `out`.PID.N), calls `send()`, dumps the counters, and returns the instructions counted
    (the dump's summary; the dump is read once it is whole) and the dump's path."""
    pid = str(proc.pid)
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    send()
    subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
    dump = "%s.%s.1" % (out, pid)
    deadline = time.time() + wait
    while time.time() < deadline:
        if os.path.exists(dump):
            try:
                return summary(dump), dump
            except RuntimeError:
                pass  # not written to its end yet
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no whole dump at %s" % dump)


def count(args, variant, route, tmp):
    method, path, body = run.ROUTES[route]
    out = os.path.join(tmp, "%s-%s" % (variant, route))
    wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.%%p" % out]
    with run.Server(variant, core=args.server_core, wrapper=wrapper) as srv:
        run.wait_ready(srv.proc, srv.port, method, path, body, timeout=120)
        run.check_response(variant, route, *run.http_request(srv.port, method, path, body, 60))
        keep_alive_requests(srv.port, route, WARMUP)
        total, _ = counted(srv.proc, out,
                           lambda: keep_alive_requests(srv.port, route, args.requests))
        return total / args.requests


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", default="hello,params,echo,work")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--server-core", default="0")
    args = ap.parse_args()
    routes = [r for r in args.routes.split(",") if r]
    for r in routes:
        if r not in run.ROUTES:
            ap.error("unknown route %r (known: %s)" % (r, ", ".join(run.ROUTES)))
    for tool in ("valgrind", "callgrind_control", "taskset"):
        if not shutil.which(tool):
            sys.exit("%s is not installed (bench/run.sh instructions installs valgrind)" % tool)
    for path in (run.RHAPI, run.RAW):
        if not os.access(path, os.X_OK):
            sys.exit("missing %s: cargo build --release --bin rhapi --examples" % path)
    if "db" in routes:
        subprocess.run([run.RHAPI, "migrate", os.path.join(run.BENCH, "app")], check=True,
                       capture_output=True)

    tmp = tempfile.mkdtemp(prefix="rhapi-instructions-")
    try:
        print("# user-space instructions per request (callgrind, %d requests after %d warm-up, "
              "one keep-alive connection)" % (args.requests, WARMUP))
        print("")
        print("| route | raw actix-web | rhapi | rhapi / raw |")
        print("|---|--:|--:|--:|")
        for route in routes:
            raw = count(args, "raw", route, tmp)
            rhapi = count(args, "rhapi", route, tmp)
            print("| %s | %s | %s | %.2f |" % (run.ROUTE_LABEL[route], "{:,.0f}".format(raw),
                                               "{:,.0f}".format(rhapi), rhapi / raw), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

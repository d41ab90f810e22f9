#!/usr/bin/env python3
"""What `[metrics] listen` costs per request: user-space instructions per request (callgrind,
as bench/instructions.py counts them) of the same rhapi binary serving the bench app without
and with metrics on, and of an older binary (--baseline PATH) without them.

Run from the repository root after `cargo build --release --bin rhapi`:
    python3 bench/metrics.py [--routes hello,params] [--requests 2000] [--baseline PATH]
Needs valgrind. With metrics on, /metrics is scraped once at the end and its count of the
route's requests checked.
"""

import argparse
import http.client
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import instructions  # noqa: E402  (bench/instructions.py: keep-alive requests, callgrind)
import run  # noqa: E402  (bench/run.py: routes, servers)


def metrics_app(tmp, port):
    """A copy of the bench app whose rhapi.toml turns metrics on at `port`."""
    app = os.path.join(tmp, "app-metrics")
    shutil.copytree(os.path.join(run.BENCH, "app"), app,
                    ignore=shutil.ignore_patterns("data"))
    with open(os.path.join(app, "rhapi.toml"), "a") as f:
        f.write('\n[metrics]\nlisten = "127.0.0.1:%d"\n' % port)
    return app


def scrape(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return text


def count(args, variant, route, tmp, app_dir=None, metrics_port=None):
    method, path, body = run.ROUTES[route]
    out = os.path.join(tmp, "%s-%s-%s" % (variant, route, "on" if metrics_port else "off"))
    wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.%%p" % out]
    with run.Server(variant, app_dir=app_dir, core=args.server_core, wrapper=wrapper) as srv:
        run.wait_ready(srv.proc, srv.port, method, path, body, timeout=120)
        instructions.keep_alive_requests(srv.port, route, instructions.WARMUP)
        total, _ = instructions.counted(
            srv.proc, out,
            lambda: instructions.keep_alive_requests(srv.port, route, args.requests))
        if metrics_port:
            text = scrape(metrics_port)
            if "rhapi_http_requests_total{" not in text:
                raise RuntimeError("metrics on, but nothing counted:\n" + text)
        return total / args.requests


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", default="hello,params")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--baseline", help="an older rhapi binary, served without metrics")
    args = ap.parse_args()
    routes = [r for r in args.routes.split(",") if r]
    if args.baseline:
        run.BASE = args.baseline
    tmp = tempfile.mkdtemp(prefix="rhapi-metrics-")
    try:
        port = run.free_port()
        app = metrics_app(tmp, port)
        print("# user-space instructions per request (callgrind, %d requests after %d warm-up, "
              "one keep-alive connection)" % (args.requests, instructions.WARMUP))
        print("")
        base_col = " | baseline, off" if args.baseline else ""
        print("| route%s | metrics off | metrics on | on / off%s |"
              % (base_col, " | off / baseline" if args.baseline else ""))
        print("|---%s|--:|--:|--:%s|" % ("|--:" if args.baseline else "",
                                        "|--:" if args.baseline else ""))
        for route in routes:
            base = count(args, "base", route, tmp) if args.baseline else None
            off = count(args, "rhapi", route, tmp)
            on = count(args, "rhapi", route, tmp, app_dir=app, metrics_port=port)
            cells = [run.ROUTE_LABEL[route]]
            if base:
                cells.append("{:,.0f}".format(base))
            cells += ["{:,.0f}".format(off), "{:,.0f}".format(on), "%.3f" % (on / off)]
            if base:
                cells.append("%.3f" % (off / base))
            print("| " + " | ".join(cells) + " |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

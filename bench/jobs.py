#!/usr/bin/env python3
"""Jobs (docs/reference.md, "Jobs"): rhapi's queue against graphile-worker on one PostgreSQL,
rhapi on SQLite, what an enqueue adds to a request, and kill -9 while jobs are enqueued and
run (stdlib only). Called by `bench/run.sh jobs`.

- drain: N no-op jobs committed in one transaction with the workers idle, then the time until
  the last one has completed; jobs per second. rhapi: a route enqueues them inside
  `db::transaction`, and the time runs from its answer (after the commit) until no job is
  pending, polled every 5 ms. graphile-worker: `addJobs` of N jobs, and the time from its
  return until its task has run N times (bench/jobs/graphile.js). Same concurrency.
- latency: jobs enqueued one at a time at RATE per second while the workers are idle; each
  carries the time of its enqueue and logs (rhapi) or records (graphile) when it starts;
  p50 and p99 in ms (both clocks are milliseconds).
- sqlite: the drain on SQLite with the server pinned to one core.
- enqueue: on SQLite, keep-alive POSTs of a route that enqueues one job (an hour ahead, so
  nothing runs) against the same route without it, interleaved; CPU per request of the
  server process and mean latency, and their differences.
- kill: 8 clients enqueue jobs with distinct numbers while jobs run; the server is killed
  with SIGKILL and restarted 5 times; then every acknowledged job must have run; the jobs
  that ran twice are counted (at least once: a job killed mid-run runs again after its lease).

Needs PostgreSQL for drain/latency (RHAPI_BENCH_PG_URL, a server URL whose user may create
databases; bench/run.sh jobs starts .ci/postgres) and node with bench/jobs/node_modules.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: free_port, wait_ready, cpu_seconds, log)

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "jobs", "app")
GRAPHILE = os.path.join(HERE, "jobs", "graphile.js")
BIN = os.path.join(os.path.dirname(HERE), "target", "release", "rhapi")


def with_database(base, name):
    """base URL with its database replaced by `name`, created afresh."""
    parts = urllib.parse.urlsplit(base)
    subprocess.run(["psql", base, "-qc", "DROP DATABASE IF EXISTS %s" % name], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["psql", base, "-qc", "CREATE DATABASE %s" % name], check=True,
                   stdout=subprocess.DEVNULL)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


class Rhapi:
    """`rhapi start` on a copy of bench/jobs/app; its log goes to a file."""

    def __init__(self, database_url=None, concurrency=4, cpus=None, extra_toml=""):
        self.dir = tempfile.mkdtemp(prefix="rhapi-jobs-")
        shutil.copytree(APP, self.dir, dirs_exist_ok=True)
        with open(os.path.join(self.dir, "rhapi.toml"), "w") as f:
            f.write("[jobs]\nconcurrency = %d\n%s" % (concurrency, extra_toml))
        self.env = dict(os.environ)
        self.env.pop("DATABASE_URL", None)
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.cpus = cpus
        self.proc = None
        self.start()

    def start(self):
        self.port = run.free_port()
        cmd = [BIN, "start", self.dir, "--port", str(self.port), "--timeout", "60s"]
        if self.cpus:
            cmd = ["taskset", "-c", self.cpus] + cmd
        self.log_path = os.path.join(self.dir, "server-%d.log" % time.time_ns())
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        run.wait_ready(self.proc, self.port, "GET", "/api/pending")

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()

    def call(self, method, path, timeout=120.0):
        status, body = run.http_request(self.port, method, path, b"" if method == "POST" else None,
                                        timeout=timeout)
        if status != 200:
            raise RuntimeError("%s %s: %d %s" % (method, path, status, body[:300]))
        return json.loads(body)

    def wait_drained(self, timeout=600.0):
        deadline = time.perf_counter() + timeout
        while self.call("GET", "/api/pending") != 0:
            if time.perf_counter() > deadline:
                raise RuntimeError("jobs still pending after %.0f s" % timeout)
            time.sleep(0.005)
        return time.perf_counter()

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def rhapi_drain(database_url, n, concurrency, cpus=None):
    server = Rhapi(database_url, concurrency, cpus)
    try:
        server.call("POST", "/api/enqueue?n=%d" % n)
        start = time.perf_counter()
        end = server.wait_drained()
        return n / (end - start)
    finally:
        server.stop()
        server.cleanup()


def graphile(database_url, *args):
    env = dict(os.environ, DATABASE_URL=database_url)
    out = subprocess.run(["node", GRAPHILE] + [str(a) for a in args], env=env, check=True,
                         capture_output=True, text=True, timeout=900).stdout
    return json.loads(out.strip().splitlines()[-1])


def rhapi_latency(database_url, n, rate, concurrency):
    server = Rhapi(database_url, concurrency)
    try:
        for _ in range(n):
            server.call("POST", "/api/timed")
            time.sleep(1.0 / rate)
        server.wait_drained()
        time.sleep(0.1)  # the log is written in batches every 20 ms
        server.stop()
        return [int(m) for m in re.findall(r"latency_ms (\d+)", server.log_text())]
    finally:
        server.cleanup()


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def keep_alive_cpu(server, path, n):
    """Server CPU µs and mean latency µs per request for n keep-alive POSTs of path."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    cpu0 = run.cpu_seconds(server.proc.pid)
    t0 = time.perf_counter()
    for _ in range(n):
        conn.request("POST", path, body=b"", headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
    t1 = time.perf_counter()
    cpu1 = run.cpu_seconds(server.proc.pid)
    conn.close()
    return (cpu1 - cpu0) * 1e6 / n, (t1 - t0) * 1e6 / n


def enqueue_cost(rounds, n):
    server = Rhapi(None, 4, cpus="0")
    try:
        keep_alive_cpu(server, "/api/plain", 500)  # warm-up
        keep_alive_cpu(server, "/api/later", 500)
        plain, later = [], []
        for _ in range(rounds):
            plain.append(keep_alive_cpu(server, "/api/plain", n))
            later.append(keep_alive_cpu(server, "/api/later", n))
        med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
        return {
            "plain_cpu_us": med(plain, 0), "enqueue_cpu_us": med(later, 0),
            "plain_latency_us": med(plain, 1), "enqueue_latency_us": med(later, 1),
        }
    finally:
        server.stop()
        server.cleanup()


def kill_test(database_url, kills, clients):
    server = Rhapi(database_url, 4, extra_toml='lease_grace = "1s"\n')
    with open(os.path.join(server.dir, "jobs", "mark.rhai"), "a") as f:
        f.write('\nconst CONFIG = #{ timeout: "2s" };\n')
    acked, lock, stop = set(), threading.Lock(), threading.Event()
    counter = iter(range(1, 10**9))

    def client():
        while not stop.is_set():
            with lock:
                i = next(counter)
            try:
                server.call("POST", "/api/mark?i=%d" % i, timeout=5.0)
                with lock:
                    acked.add(i)
            except (OSError, http.client.HTTPException, RuntimeError):
                time.sleep(0.01)  # the server is down: not acknowledged, try the next number

    threads = [threading.Thread(target=client) for _ in range(clients)]
    try:
        server.stop()
        server.start()  # picks up CONFIG
        for t in threads:
            t.start()
        for _ in range(kills):
            time.sleep(random.uniform(0.5, 1.5))
            server.kill()
            server.start()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        server.wait_drained()
        runs = {row["i"]: row["runs"] for row in server.call("GET", "/api/ran")}
        lost = sorted(i for i in acked if i not in runs)
        twice = sum(1 for i in acked if runs.get(i, 0) > 1)
        return {"acknowledged": len(acked), "lost": len(lost), "ran_twice": twice,
                "ran_unacknowledged": sum(1 for i in runs if i not in acked)}
    finally:
        stop.set()
        server.stop()
        server.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--latency-jobs", type=int, default=500)
    ap.add_argument("--rate", type=int, default=100, help="latency: enqueues per second")
    ap.add_argument("--only", default="drain,latency,sqlite,enqueue,kill")
    args = ap.parse_args()
    only = set(args.only.split(","))
    base = os.environ.get("RHAPI_BENCH_PG_URL")
    report = {}
    if only & {"drain", "latency"} and not base:
        sys.exit("RHAPI_BENCH_PG_URL is unset (bench/run.sh jobs starts .ci/postgres)")
    if "drain" in only:
        r = rhapi_drain(with_database(base, "bench_rhapi_jobs"), args.jobs, args.concurrency)
        g = graphile(with_database(base, "bench_graphile"), "drain", args.jobs, args.concurrency)
        g = args.jobs / g["seconds"]
        report["pg_drain"] = {"rhapi_jobs_per_s": r, "graphile_jobs_per_s": g, "ratio": r / g}
        run.log("drain on PostgreSQL: rhapi %.0f jobs/s, graphile-worker %.0f (%.2fx)" % (r, g, r / g))
    if "latency" in only:
        r = rhapi_latency(with_database(base, "bench_rhapi_jobs"), args.latency_jobs, args.rate,
                          args.concurrency)
        g = graphile(with_database(base, "bench_graphile"), "latency", args.latency_jobs,
                     args.rate, args.concurrency)["latencies_ms"]
        report["pg_latency_ms"] = {
            "rhapi": {"p50": percentile(r, 50), "p99": percentile(r, 99), "n": len(r)},
            "graphile": {"p50": percentile(g, 50), "p99": percentile(g, 99), "n": len(g)},
        }
        run.log("latency on PostgreSQL (ms): %s" % json.dumps(report["pg_latency_ms"]))
    if "sqlite" in only:
        r = rhapi_drain(None, args.jobs, args.concurrency, cpus="0")
        report["sqlite_drain_one_core"] = {"rhapi_jobs_per_s": r}
        run.log("drain on SQLite, one core: %.0f jobs/s" % r)
    if "enqueue" in only:
        report["sqlite_enqueue"] = enqueue_cost(5, 2000)
        run.log("enqueue on SQLite: %s" % json.dumps(report["sqlite_enqueue"]))
    if "kill" in only:
        report["kill_sqlite"] = kill_test(None, 5, 8)
        run.log("kill -9 x5 on SQLite: %s" % json.dumps(report["kill_sqlite"]))
        if base:
            report["kill_postgres"] = kill_test(with_database(base, "bench_rhapi_kill"), 5, 8)
            run.log("kill -9 x5 on PostgreSQL: %s" % json.dumps(report["kill_postgres"]))
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", "jobs.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

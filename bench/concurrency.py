#!/usr/bin/env python3
"""Concurrency scenarios (stdlib only): rhapi (and an optional older binary, --baseline) against
Bun (and optionally node:http and Fastify) when requests wait on a slow upstream, hold
thousands of connections, share the server with a runaway script, or keep SSE streams open.
Called by `bench/run.sh concurrency`, which builds first and raises `ulimit -n`.

Each server runs pinned to the server core (rhapi: `start --workers 1`); wrk, the upstream stub
(the Cargo example `upstream`, bench/upstream.rs) and this script run on the client core. Every
scenario starts a fresh server and a fresh upstream. The report (Markdown) goes to stdout and
bench/out/concurrency.md, the figures to bench/out/concurrency.json.

Scenarios (--scenarios, comma list; default all):
  slow     upstream 500 ms, wrk -t2 -c200 on /api/slow: req/s, mean, p99
  c10k     upstream 1 s, wrk -t2 -c10000 --timeout 10s on /api/slow: req/s, errors, peak RSS
  mixed    upstream 1 s, 5,000 connections on /api/slow while wrk -c4 measures /api/hello
  runaway  4 clients looping on /api/spin (budget 2 s) while wrk -c4 measures /api/hello
  sse      1,000 streams of /api/sse (30 events, one a second), every event checked
"""

import argparse
import asyncio
import collections
import datetime
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (bench/run.py: servers, wrk parsing, formatting)

UPSTREAM = os.path.join(R.ROOT, "target", "release", "examples", "upstream")
SCENARIOS = ("slow", "c10k", "mixed", "runaway", "sse")
# Descriptors a server needs besides two per connection (listener, database, pipes, ...).
FD_SPARE = 200
log = R.log


# ---------------------------------------------------------------------------------------------
# processes


class Upstream:
    """bench/upstream.rs on the client core, answering after delay_ms."""

    def __init__(self, core, delay_ms):
        self.port = R.free_port()
        self.delay_ms = delay_ms
        self.url = "http://127.0.0.1:%d/upstream" % self.port
        self.proc = subprocess.Popen(
            ["taskset", "-c", core, UPSTREAM, "--port", str(self.port), "--delay-ms",
             str(delay_ms)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening"):
            self.stop()
            raise RuntimeError("upstream stub did not start: %r" % line)
        self.banner = line.strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def server_env(variant, upstream):
    env = {"UPSTREAM_URL": upstream.url} if upstream else {}
    if variant == "bun":
        # Bun's fetch allows 256 requests in flight by default (the rest queue): lift it, as
        # anyone serving many slow upstream calls would. 65,535 is Bun's maximum.
        env["BUN_CONFIG_MAX_HTTP_REQUESTS"] = "65535"
    return env


def start_server(args, variant, upstream=None, extra_args=()):
    srv = R.Server(variant, core=args.server_core, extra_args=extra_args,
                   extra_env=server_env(variant, upstream))
    try:
        R.wait_ready(srv.proc, srv.port)
    except Exception:
        srv.stop()
        raise
    return srv


class RssPeak:
    """Polls the server's VmRSS (with its descendants) every 50 ms; `peak` in KiB. VmHWM of
    the main process is read at stop as a cross-check (it also covers spikes between polls)."""

    def __init__(self, pid):
        self.pid, self.peak, self.hwm = pid, 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, R.rss_kib(self.pid))
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._t.join()
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.hwm = int(line.split()[1])
        except OSError:
            pass
        return self.peak


# A wrk script that counts the answers by status code (over all wrk threads) and prints
# `status CODE COUNT` lines at the end. Used on the slow routes, where an overloaded server's
# quick 503s must not pass for throughput.
STATUS_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("status %d %d\\n", k, v)) end
end
"""
STATUS_LUA_PATH = None


def wrk_cmd(args, port, path, conns, duration, threads=1, timeout_s=10, latency=True,
            statuses=False):
    return ["taskset", "-c", args.client_core, "wrk"] + (["--latency"] if latency else []) + [
        "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--timeout", "%ds" % timeout_s] + (
        ["-s", STATUS_LUA_PATH] if statuses else []) + ["http://127.0.0.1:%d%s" % (port, path)]


def parse(out):
    """run.py's wrk figures, plus `statuses` {code: count} and `ok_rps` (2xx answers a second)
    when the status script ran."""
    res = R.parse_wrk(out)
    st = {int(c): int(n) for c, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    if st:
        res["statuses"] = {str(c): st[c] for c in sorted(st)}
        ok = sum(n for c, n in st.items() if 200 <= c < 300)
        res["ok_rps"] = res["rps"] * ok / max(1, res.get("requests") or sum(st.values()))
    return res


def wrk(args, port, path, conns, duration, **kw):
    """Runs wrk on the client core; returns its parsed figures."""
    return parse(wrk_popen(wrk_cmd(args, port, path, conns, duration, **kw)).communicate()[0])


def wrk_popen(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def check_slow(variant, port, upstream):
    status, body = R.http_request(port, "GET", "/api/slow", timeout=upstream.delay_ms / 1000 + 10)
    want = {"ok": True, "delay_ms": upstream.delay_ms}
    if status != 200 or json.loads(body) != want:
        raise RuntimeError("%s /api/slow answered %d %r, expected %r" % (
            variant, status, body[:300], want))


def failures(res):
    return res.get("errors", 0) + res.get("non2xx", 0)


# ---------------------------------------------------------------------------------------------
# scenarios


def scenario_slow(args, variant):
    """Upstream 500 ms, wrk -t2 -c200 on /api/slow."""
    with Upstream(args.client_core, 500) as up, start_server(args, variant, up) as srv:
        check_slow(variant, srv.port, up)
        rss = RssPeak(srv.proc.pid)
        res = wrk(args, srv.port, "/api/slow", args.slow_connections, args.duration, threads=2,
                  statuses=True)
        res["rss_peak_kib"] = rss.stop()
    log("slow     %-7s %8.1f 2xx/s (%.1f answers/s)  mean %s  p99 %s  errors %d %s" % (
        variant, res.get("ok_rps", 0), res["rps"], R.fmt_us(res.get("mean")),
        R.fmt_us(res.get("p99")), failures(res), res.get("statuses")))
    return res


def scenario_c10k(args, variant):
    """Upstream 1 s, wrk -t2 -c10000 --timeout 10s: req/s, errors, peak RSS."""
    with Upstream(args.client_core, 1000) as up, start_server(args, variant, up) as srv:
        check_slow(variant, srv.port, up)
        idle = R.rss_kib(srv.proc.pid)
        rss = RssPeak(srv.proc.pid)
        res = wrk(args, srv.port, "/api/slow", args.c10k_connections, args.duration, threads=2,
                  statuses=True)
        res["rss_peak_kib"] = rss.stop()
        res["rss_hwm_kib"] = rss.hwm
        res["rss_idle_kib"] = idle
        res["rss_per_conn_kib"] = (res["rss_peak_kib"] - idle) / args.c10k_connections
    log("c10k     %-7s %8.1f 2xx/s (%.1f answers/s)  errors %d (%s, statuses %s)  peak RSS %s "
        "(idle %s)" % (variant, res.get("ok_rps", 0), res["rps"], failures(res),
                       res.get("socket_errors", "no socket errors"), res.get("statuses"),
                       R.fmt_mib(res["rss_peak_kib"]), R.fmt_mib(idle)))
    return res


def scenario_mixed(args, variant):
    """hello p99 alone, then while args.mixed_connections slow requests (1 s upstream) are in
    flight on the same server."""
    with Upstream(args.client_core, 1000) as up, start_server(args, variant, up) as srv:
        check_slow(variant, srv.port, up)
        alone = wrk(args, srv.port, "/api/hello", 4, args.duration)
        bg = wrk_popen(wrk_cmd(args, srv.port, "/api/slow", args.mixed_connections,
                               args.duration + 4, latency=False, statuses=True))
        time.sleep(2.0)  # let the slow connections open and their requests start
        loaded = wrk(args, srv.port, "/api/hello", 4, args.duration)
        slow = parse(bg.communicate()[0])
    log("mixed    %-7s hello p99 alone %s, with %d slow in flight %s (%.0f req/s); slow %.0f "
        "2xx/s, errors %d %s" % (variant, R.fmt_us(alone.get("p99")), args.mixed_connections,
                                 R.fmt_us(loaded.get("p99")), loaded["rps"],
                                 slow.get("ok_rps", 0), failures(slow), slow.get("statuses")))
    return {"alone": alone, "loaded": loaded, "slow": slow}


def scenario_runaway(args, variant):
    """hello p99 alone, then while 4 clients loop on /api/spin (a 2 s budget)."""
    extra = ["--timeout", "2s", "--max-operations", "0"] if variant in ("rhapi", "base") else []
    with start_server(args, variant, None, extra) as srv:
        alone = wrk(args, srv.port, "/api/hello", 4, args.duration)
        statuses = collections.Counter()
        lock = threading.Lock()
        stop = threading.Event()

        def client():
            while not stop.is_set():
                try:
                    status, _ = R.http_request(srv.port, "GET", "/api/spin", timeout=30.0)
                except (OSError, R.http.client.HTTPException) as e:
                    status = type(e).__name__
                with lock:
                    statuses[status] += 1

        clients = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for c in clients:
            c.start()
        time.sleep(0.5)
        loaded = wrk(args, srv.port, "/api/hello", 4, args.duration)
        stop.set()
        for c in clients:
            c.join(timeout=35)
    statuses = {str(k): v for k, v in sorted(statuses.items(), key=str)}
    log("runaway  %-7s hello p99 alone %s, with 4 runaways %s (%.0f req/s); runaway answers %s"
        % (variant, R.fmt_us(alone.get("p99")), R.fmt_us(loaded.get("p99")), loaded["rps"],
           statuses))
    return {"alone": alone, "loaded": loaded, "spin_statuses": statuses}


# --- SSE ---


def sse_probe(port):
    """Status, content type and the start of the body of GET /api/sse (reads the head only)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if b"\r\n\r\n" in data and b"text/event-stream" not in data.split(b"\r\n\r\n")[0].lower():
            # Not a stream: read the (short) error body too, for the report.
            s.settimeout(2)
            try:
                while len(data) < 4096:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.\d (\d+)", lines[0] if lines else "")
    status = int(m.group(1)) if m else 0
    ctype = ""
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-type":
            ctype = v.strip()
    return status, ctype, body[:300]


async def sse_stream(port, events, t_start, result):
    """One stream: checks events 0..events-1 arrive in order with `data: tick i`; records the
    worst lateness against `t_start + i` seconds."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    except OSError as e:
        result["connect_errors"] += 1
        result["first_error"] = result["first_error"] or repr(e)
        return
    try:
        writer.write(b"GET /api/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") or b"text/event-stream" not in head.lower():
            result["bad_status"] += 1
            return
        t0 = time.perf_counter()
        chunked = b"transfer-encoding: chunked" in head.lower()
        buf = b""
        want = 0

        async def more():
            if not chunked:
                return await reader.read(65536)
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            return data[:-2] if size else b""

        while want < events:
            data = await more()
            if not data:
                break
            buf += data.replace(b"\r\n", b"\n")
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                fields = {}
                for line in block.decode().split("\n"):
                    k, _, v = line.partition(":")
                    fields[k] = v[1:] if v.startswith(" ") else v
                if fields.get("id") != str(want) or fields.get("data") != "tick %d" % want:
                    result["out_of_order"] += 1
                    result["first_error"] = result["first_error"] or "expected id %d, got %r" % (
                        want, fields)
                    return
                late = time.perf_counter() - (t0 + want)
                result["max_late_s"] = max(result["max_late_s"], late)
                result["events"] += 1
                want += 1
        if want == events:
            result["complete"] += 1
        else:
            result["short"] += 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
        result["read_errors"] += 1
        result["first_error"] = result["first_error"] or repr(e)
    finally:
        writer.close()


async def sse_all(port, streams, events, timeout_s):
    result = {"complete": 0, "short": 0, "events": 0, "connect_errors": 0, "read_errors": 0,
              "bad_status": 0, "out_of_order": 0, "max_late_s": 0.0, "first_error": None}
    t_start = time.perf_counter()
    tasks = [asyncio.ensure_future(sse_stream(port, events, t_start, result))
             for _ in range(streams)]
    done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for t in pending:
        t.cancel()
    result["timed_out"] = len(pending)
    result["seconds"] = time.perf_counter() - t_start
    return result


def scenario_sse(args, variant):
    with start_server(args, variant) as srv:
        status, ctype, body = sse_probe(srv.port)
        if status != 200 or "text/event-stream" not in ctype:
            res = {"unsupported": "answers %d %s %s" % (status, ctype or "(no content type)",
                                                      body.decode("utf-8", "replace").strip())}
            log("sse      %-7s unsupported: %s" % (variant, res["unsupported"]))
            return res
        idle = R.rss_kib(srv.proc.pid)
        rss = RssPeak(srv.proc.pid)
        res = asyncio.run(sse_all(srv.port, args.sse_streams, 30, 30 + 30))
        res["rss_peak_kib"] = rss.stop()
        res["rss_idle_kib"] = idle
    log("sse      %-7s %d/%d streams complete, %d events, max lateness %.2f s, peak RSS %s%s" % (
        variant, res["complete"], args.sse_streams, res["events"], res["max_late_s"],
        R.fmt_mib(res["rss_peak_kib"]),
        "  first error: %s" % res["first_error"] if res["first_error"] else ""))
    return res


# ---------------------------------------------------------------------------------------------
# report


def ratio(a, b):
    return "–" if not a or not b else "%.2f" % (a / b)


def errs(res):
    parts = []
    if res.get("errors"):
        parts.append(res["socket_errors"].replace("Socket errors: ", "socket "))
    bad = {c: n for c, n in (res.get("statuses") or {}).items() if not c.startswith("2")}
    if bad:
        parts.append(", ".join("%s × %d" % kv for kv in bad.items()))
    elif res.get("non2xx"):
        parts.append("%d non-2xx" % res["non2xx"])
    return ", ".join(parts) or "0"


def build_report(args, meta, variants, results):
    def us(res, key):
        # wrk prints zeros for the percentiles of a run in which nothing completed.
        return "none completed" if not res.get("requests") else R.fmt_us(res.get(key))

    L = ["# rhapi concurrency scenarios, %s" % meta["date"], ""]
    L.append("- commit `%s`, rhapi binary built at %s; `nproc` = %s; load average before / after "
             "%s / %s; open files limit %s" % (meta["commit"], meta["binary_built"],
                                               meta["nproc"], meta["load_before"],
                                               meta["load_after"], meta["nofile"]))
    if meta.get("versions"):
        L.append("- peers: %s" % meta["versions"])
    if args.baseline:
        L.append("- baseline binary (`base`): `%s`" % args.baseline)
    for key, asked in args.capped.items():
        L.append("- **%s capped from %s to %s** by the open files limit (%s; the hard limit, which "
                 "only CAP_SYS_RESOURCE raises): a server that holds one upstream socket per "
                 "request needs two descriptors per connection" % (
                     key.replace("_", "-"), "{:,}".format(asked),
                     "{:,}".format(getattr(args, key)), meta["nofile"]))
    L.append("- server pinned to core %s (rhapi: `start --workers 1`), wrk, the upstream stub and "
             "the harness on core %s; %d s per measured wrk run, `--timeout 10s`; one run per "
             "server (no rounds: compare ratios, not absolute figures)" % (
                 args.server_core, args.client_core, args.duration))
    L.append("")
    others = [v for v in variants if v != "rhapi"]
    if "slow" in args.scenarios:
        s = "slow"
        L.append("## Slow upstream: 500 ms, `wrk -t2 -c%d` on `/api/slow`" % args.slow_connections)
        L.append("")
        L.append("2xx/s: successful answers a second (wrk's req/s counts errors too, in brackets). "
                 "Latencies are wrk's, over all answers.")
        L.append("")
        L.append("| server | 2xx/s | mean | p99 | errors | peak RSS |")
        L.append("|---|--:|--:|--:|---|--:|")
        for v in variants:
            r = results[s][v]
            L.append("| %s | %.1f (%.1f) | %s | %s | %s | %s |" % (
                v, r.get("ok_rps", 0), r["rps"], us(r, "mean"), us(r, "p99"), errs(r),
                R.fmt_mib(r["rss_peak_kib"])))
        if others:
            L.append("")
            L.append("2xx/s ratios:" + "".join(" rhapi / %s = %s;" % (
                v, ratio(results[s]["rhapi"].get("ok_rps"), results[s][v].get("ok_rps")))
                for v in others))
        L.append("")
    if "c10k" in args.scenarios:
        s = "c10k"
        L.append("## %s connections, 1 s upstream, `wrk -t2 -c%d --timeout 10s` on `/api/slow`"
                 % ("{:,}".format(args.c10k_connections), args.c10k_connections))
        L.append("")
        L.append("A request that waits over 10 s is a wrk timeout (a socket error). Peak RSS: "
                 "VmRSS polled every 50 ms (VmHWM of the main process in brackets); per "
                 "connection: (peak − idle) / connections.")
        L.append("")
        L.append("| server | 2xx/s (all answers/s) | errors | p99 | peak RSS | per connection |")
        L.append("|---|--:|---|--:|--:|--:|")
        for v in variants:
            r = results[s][v]
            L.append("| %s | %.1f (%.1f) | %s | %s | %s (%s) | %.1f KiB |" % (
                v, r.get("ok_rps", 0), r["rps"], errs(r), us(r, "p99"),
                R.fmt_mib(r["rss_peak_kib"]), R.fmt_mib(r["rss_hwm_kib"]),
                r["rss_per_conn_kib"]))
        if others:
            L.append("")
            L.append("2xx/s ratios:" + "".join(" rhapi / %s = %s;" % (
                v, ratio(results[s]["rhapi"].get("ok_rps"), results[s][v].get("ok_rps")))
                for v in others))
        L.append("")
    if "mixed" in args.scenarios:
        s = "mixed"
        L.append("## `/api/hello` (`wrk -c4`) while %s slow requests (1 s upstream) are in flight"
                 % "{:,}".format(args.mixed_connections))
        L.append("")
        L.append("| server | hello p99 alone | hello p99 loaded | hello req/s loaded | "
                 "slow 2xx/s | slow errors |")
        L.append("|---|--:|--:|--:|--:|---|")
        for v in variants:
            r = results[s][v]
            L.append("| %s | %s | %s | %s | %.1f | %s |" % (
                v, us(r["alone"], "p99"), us(r["loaded"], "p99"),
                R.fmt_rps(r["loaded"]["rps"]), r["slow"].get("ok_rps", 0), errs(r["slow"])))
        L.append("")
    if "runaway" in args.scenarios:
        s = "runaway"
        L.append("## `/api/hello` (`wrk -c4`) while 4 clients loop on the runaway `/api/spin`")
        L.append("")
        L.append("rhapi: `--timeout 2s --max-operations 0`, the runaway should end in 504. The JS "
                 "peers have no budget: their `/api/spin` spins 2 s and then answers 504, "
                 "blocking their event loop meanwhile.")
        L.append("")
        L.append("| server | hello p99 alone | hello p99 with runaways | hello req/s | "
                 "runaway answers |")
        L.append("|---|--:|--:|--:|---|")
        for v in variants:
            r = results[s][v]
            L.append("| %s | %s | %s | %s | %s |" % (
                v, us(r["alone"], "p99"), us(r["loaded"], "p99"),
                R.fmt_rps(r["loaded"]["rps"]),
                ", ".join("%s × %d" % kv for kv in r["spin_statuses"].items()) or "none"))
        L.append("")
    if "sse" in args.scenarios:
        s = "sse"
        L.append("## %s SSE streams of `/api/sse` (30 events, one a second)"
                 % "{:,}".format(args.sse_streams))
        L.append("")
        L.append("| server | streams complete | events | max lateness | errors | peak RSS | "
                 "per stream |")
        L.append("|---|--:|--:|--:|---|--:|--:|")
        for v in variants:
            r = results[s][v]
            if "unsupported" in r:
                L.append("| %s | unsupported: %s | | | | | |" % (
                    v, r["unsupported"].replace("|", "\\|")[:160]))
                continue
            bad = sum(r[k] for k in ("short", "connect_errors", "read_errors", "bad_status",
                                     "out_of_order", "timed_out"))
            L.append("| %s | %d / %d | %d | %.2f s | %s | %s | %.1f KiB |" % (
                v, r["complete"], args.sse_streams, r["events"], r["max_late_s"],
                "%d (%s)" % (bad, r["first_error"]) if bad else "0",
                R.fmt_mib(r["rss_peak_kib"]),
                (r["rss_peak_kib"] - r["rss_idle_kib"]) / args.sse_streams))
        L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    global UPSTREAM, STATUS_LUA_PATH
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--duration", type=int, default=10, help="seconds of each measured wrk run")
    ap.add_argument("--quick", action="store_true", help="4 s runs (the SSE scenario stays 30 s)")
    ap.add_argument("--slow-connections", type=int, default=200)
    ap.add_argument("--c10k-connections", type=int, default=10000)
    ap.add_argument("--mixed-connections", type=int, default=5000)
    ap.add_argument("--sse-streams", type=int, default=1000)
    ap.add_argument("--no-bun", action="store_true", help="rhapi (and --baseline) only")
    ap.add_argument("--no-build", action="store_true", help="(handled by run.sh)")
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--client-core", default="1")
    ap.add_argument("--out", default=os.path.join(R.BENCH, "out", "concurrency.md"))
    R.add_peer_args(ap)
    args = ap.parse_args()
    if not args.no_bun:
        args.with_bun = True
    peers = R.resolve_peers(ap, args)
    if args.quick:
        args.duration = 4
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    for s in args.scenarios:
        if s not in SCENARIOS:
            ap.error("unknown scenario %r (known: %s)" % (s, ", ".join(SCENARIOS)))
    for path in (R.RHAPI, UPSTREAM):
        if not os.access(path, os.X_OK):
            sys.exit("missing %s: run bench/run.sh concurrency (it builds), or cargo build "
                     "--release --bin rhapi --examples" % path)
    R.check_peers(peers)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (bench/run.sh installs it)")

    nofile = raise_nofile()
    # A server waiting on one upstream socket per in-flight request needs two descriptors per
    # client connection (and some to spare): cap the connection counts to fit the limit, and
    # say so in the report, rather than measure EMFILE errors.
    args.capped = {}
    for key in ("c10k_connections", "mixed_connections"):
        fit = (nofile - FD_SPARE) // 2
        if key.split("_")[0] in args.scenarios and getattr(args, key) > fit:
            args.capped[key] = getattr(args, key)
            log("warning: open files limit %d: %s %d capped to %d (2 descriptors per "
                "connection + %d)" % (nofile, key.replace("_", "-"), getattr(args, key), fit,
                                      FD_SPARE))
            setattr(args, key, fit)

    # Private copies, so a cargo build during the run cannot swap the binaries.
    bindir = tempfile.mkdtemp(prefix="rhapi-conc-bin-")
    binary_built = datetime.datetime.fromtimestamp(os.path.getmtime(R.RHAPI)).strftime("%H:%M")
    for name in ("RHAPI", "BASE"):
        src = getattr(R, name)
        if src:
            dst = os.path.join(bindir, name.lower())
            shutil.copy2(src, dst)
            setattr(R, name, dst)
    shutil.copy2(UPSTREAM, os.path.join(bindir, "upstream"))
    STATUS_LUA_PATH = os.path.join(bindir, "statuses.lua")
    with open(STATUS_LUA_PATH, "w") as f:
        f.write(STATUS_LUA)
    UPSTREAM = os.path.join(bindir, "upstream")

    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    try:
        os.sched_setaffinity(0, {int(args.client_core)})
    except (AttributeError, OSError, ValueError):
        pass

    variants = ["rhapi"] + (["base"] if R.BASE else []) + [p for p in R.PEERS if p in peers]
    subprocess.run([R.RHAPI, "migrate", os.path.join(R.BENCH, "app")], check=True,
                   capture_output=True)
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip(),
        "commit": R.git("rev-parse", "--short", "HEAD") or "unknown",
        "binary_built": binary_built,
        "nproc": nproc,
        "load_before": R.loadavg(),
        "nofile": nofile,
        "versions": R.peer_versions(variants),
    }
    fns = {"slow": scenario_slow, "c10k": scenario_c10k, "mixed": scenario_mixed,
           "runaway": scenario_runaway, "sse": scenario_sse}
    results = {}
    try:
        for s in args.scenarios:
            log("== %s" % s)
            results[s] = {}
            for v in variants:
                results[s][v] = fns[s](args, v)
                time.sleep(1.0)  # let sockets of the last run drain (TIME_WAIT is fine)
    finally:
        shutil.rmtree(bindir, ignore_errors=True)
    meta["load_after"] = R.loadavg()
    report = build_report(args, meta, variants, results)
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report + "\n")
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"meta": meta, "args": vars(args), "results": results}, f, indent=1)
    log("== report written to %s" % os.path.relpath(args.out, R.ROOT))


if __name__ == "__main__":
    main()

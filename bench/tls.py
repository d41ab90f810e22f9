#!/usr/bin/env python3
"""HTTPS: "Hello" over TLS, rhapi (`[tls]`) vs Caddy (`respond "Hello"`) vs Bun (`Bun.serve`
with `tls`), side by side in one run, each server pinned to one core, the load generator on
the other. Run by `bench/run.sh tls` (which builds rhapi and installs wrk, h2load, Caddy and
Bun when missing), or alone after `cargo build --release --bin rhapi`.

Measured, each server in turn, every round:
  keep-alive   wrk -t1 -cN over HTTPS (HTTP/1.1, TLS 1.3), requests per second
  handshakes   the same with `Connection: close`: each request on a new connection, so a full
               TLS handshake per request (wrk resumes no sessions); new connections per second
  h2           h2load -t1 -cN -m10 (HTTP/2 by ALPN), rhapi and Caddy only (Bun.serve speaks
               HTTP/1.1 alone)
plus the server's CPU time per request (user + system, all its threads).

All servers use the test certificate of tests/fixtures/tls (ECDSA P-256), and answer the
5-byte body "Hello" as text/plain.
"""

import argparse
import datetime
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (bench/run.py: CPU time, wrk parsing, formatting)

TLS_DIR = os.path.join(R.ROOT, "tests", "fixtures", "tls")
CERT = os.path.join(TLS_DIR, "server-cert.pem")
KEY = os.path.join(TLS_DIR, "server-key.pem")
CA = os.path.join(TLS_DIR, "ca.pem")
BUN_TLS = os.path.join(R.BENCH, "bun", "tls.js")
SERVERS = ("rhapi", "caddy", "bun")


def write_apps(tmp):
    """The rhapi app and the Caddyfile, in `tmp`."""
    app = os.path.join(tmp, "app")
    os.makedirs(os.path.join(app, "pages", "api"))
    with open(os.path.join(app, "pages", "api", "hello.rhai"), "w") as f:
        f.write('fn GET(req) { "Hello" }\n')
    with open(os.path.join(app, "rhapi.toml"), "w") as f:
        f.write('[tls]\ncert = "%s"\nkey = "%s"\n' % (CERT, KEY))
    return app


def caddyfile(tmp, port):
    path = os.path.join(tmp, "Caddyfile")
    with open(path, "w") as f:
        f.write(
            # No HTTP/3 (the load is over TCP) and no host matcher (any Host gets "Hello").
            "{\n\tadmin off\n\tauto_https off\n\tservers {\n\t\tprotocols h1 h2\n\t}\n}\n"
            "https://:%d {\n\tbind 127.0.0.1\n\ttls %s %s\n\trespond \"Hello\"\n}\n"
            % (port, CERT, KEY))
    return path


class Server:
    """One server in its own session, pinned to `core`."""

    def __init__(self, name, tmp, app, core):
        self.name = name
        self.port = R.free_port()
        env = dict(os.environ)
        if name == "rhapi":
            cmd = [R.RHAPI, "start", app, "--port", str(self.port), "--hostname", "127.0.0.1",
                   "--workers", "1", "--no-watch"]
        elif name == "caddy":
            cmd = ["caddy", "run", "--config", caddyfile(tmp, self.port), "--adapter", "caddyfile"]
            # One OS thread running Go code, like one actix worker; its own folders.
            env.update(GOMAXPROCS="1", XDG_DATA_HOME=os.path.join(tmp, "caddy-data"),
                       XDG_CONFIG_HOME=os.path.join(tmp, "caddy-config"))
        elif name == "bun":
            cmd = [R.BUN, BUN_TLS, str(self.port), CERT, KEY]
            env.update(NODE_ENV="production")
        else:
            raise ValueError(name)
        self.proc = subprocess.Popen(["taskset", "-c", core] + cmd, cwd=tmp, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout=60.0):
        """Polls until GET /api/hello over HTTPS answers "Hello"; returns the TLS version and
        cipher suite a client like wrk's (OpenSSL) gets."""
        context = ssl.create_default_context(cafile=CA)
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s" % (self.name, self.proc.returncode))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
                    with context.wrap_socket(raw, server_hostname="localhost") as tls:
                        tls.sendall(b"GET /api/hello HTTP/1.1\r\nhost: localhost\r\n"
                                    b"connection: close\r\n\r\n")
                        data = b""
                        while True:
                            chunk = tls.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                        if data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\nHello"):
                            cipher = tls.cipher()
                            return "%s %s" % (cipher[1], cipher[0])
                        last = data[:200]
            except (OSError, ssl.SSLError) as err:
                last = err
            time.sleep(0.02)
        raise RuntimeError("%s not ready: %r" % (self.name, last))

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


def measure(server, cmd, parse):
    """Runs the load generator `cmd`; its parsed result with the server's CPU per request."""
    before = R.cpu_seconds(server.proc.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    cpu = R.cpu_seconds(server.proc.pid) - before
    if out.returncode != 0:
        raise RuntimeError("%s failed:\n%s%s" % (cmd[2], out.stdout, out.stderr))
    res = parse(out.stdout)
    res["cpu_us"] = cpu * 1e6 / res["requests"] if res.get("requests") else None
    return res


def wrk(args, server, new_connections):
    cmd = ["taskset", "-c", args.client_core, "wrk", "-t1", "-c%d" % args.connections,
           "-d%ds" % args.duration]
    if new_connections:
        cmd += ["-H", "Connection: close"]
    cmd.append("https://127.0.0.1:%d/api/hello" % server.port)
    res = measure(server, cmd, R.parse_wrk)
    if res["errors"] or res["non2xx"]:
        # A closed connection counts as a read error in wrk when the server closes first;
        # reported, not hidden.
        res["note"] = res.get("socket_errors", "") + (" non-2xx %d" % res["non2xx"])
    return res


def parse_h2load(out):
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    if not (m and done and proto):
        raise RuntimeError("unexpected h2load output:\n" + out)
    if proto.group(1) != "h2":
        raise RuntimeError("h2load did not get h2: " + proto.group(1))
    return {"rps": float(m.group(1)), "requests": int(done.group(1)),
            "failed": int(done.group(1)) - int(done.group(2))}


def h2(args, server):
    cmd = ["taskset", "-c", args.client_core, "h2load", "-t1", "-c%d" % args.connections,
           "-m10", "-D%d" % args.duration, "https://127.0.0.1:%d/api/hello" % server.port]
    return measure(server, cmd, parse_h2load)


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def report(args, results, ciphers, meta):
    L = ["# HTTPS: rhapi vs Caddy vs Bun (`bench/run.sh tls`)", ""]
    L.append("- %s; load average before: %s; commit `%s`" % (meta["date"], meta["load"],
                                                         meta["commit"]))
    L.append("- each server pinned to core %s (rhapi `--workers 1`, Caddy `GOMAXPROCS=1`), the "
             "load generator to core %s; %d rounds x %d s per measure, %d connections; "
             "medians of the rounds" % (args.server_core, args.client_core, args.rounds,
                                        args.duration, args.connections))
    L.append("- Caddy %s; Bun %s; %s; %s" % (meta["caddy"], meta["bun"], meta["wrk"],
                                             meta["h2load"]))
    L.append("- negotiated with an OpenSSL client: " + "; ".join(
        "%s %s" % (s, ciphers[s]) for s in SERVERS if s in ciphers))
    L.append("")
    L.append("| measure | rhapi | Caddy | Bun | rhapi / Caddy | rhapi / Bun |")
    L.append("|---|--:|--:|--:|--:|--:|")
    for key, title in (("keep", "keep-alive HTTP/1.1, req/s"),
                       ("new", "new connection per request (full handshake), conn/s"),
                       ("h2", "HTTP/2 (h2load -m10), req/s")):
        row = {s: R.median([r["rps"] for r in results[key][s]]) for s in results[key]
               if results[key][s]}
        cells = [R.fmt_rps(row[s]) if s in row else "-" for s in SERVERS]
        ratios = ["**%.2fx**" % (row["rhapi"] / row[s]) if s in row and "rhapi" in row else "-"
                  for s in ("caddy", "bun")]
        L.append("| %s | %s |" % (title, " | ".join(cells + ratios)))
        cpu = {s: R.median([r["cpu_us"] for r in results[key][s] if r.get("cpu_us")])
               for s in row}
        cells = ["%.1f" % cpu[s] if cpu.get(s) else "-" for s in SERVERS]
        ratios = ["%.2fx" % (cpu["rhapi"] / cpu[s]) if cpu.get(s) and cpu.get("rhapi") else "-"
                  for s in ("caddy", "bun")]
        L.append("| ... server CPU per request, µs (lower is better) | %s |" % " | ".join(
            cells + ratios))
    notes = [(key, s, r["note"]) for key in results for s in results[key]
             for r in results[key][s] if r.get("note")]
    if notes:
        L.append("")
        L.append("wrk's socket errors (with `Connection: close` a read error is counted when "
                 "the server closes first):")
        for key, s, note in notes:
            L.append("- %s, %s: %s" % (key, s, note))
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--client-core", default="1")
    ap.add_argument("--no-h2", action="store_true")
    ap.add_argument("--out", default=os.path.join(R.BENCH, "out", "tls.md"))
    args = ap.parse_args()
    for tool in ["wrk", "caddy", "taskset"] + ([] if args.no_h2 else ["h2load"]):
        if not shutil.which(tool):
            sys.exit("%s is required (bench/run.sh tls installs it)" % tool)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load": R.loadavg(), "commit": R.git("rev-parse", "--short", "HEAD"),
        "caddy": version(["caddy", "version"]).split()[0], "bun": version([R.BUN, "--version"]),
        "wrk": version(["wrk", "--version"]).split(" [")[0],
        "h2load": "h2load (nghttp2 %s)" % version(["h2load", "--version"]).split()[-1],
    }
    results = {"keep": {}, "new": {}, "h2": {}}
    ciphers = {}
    with tempfile.TemporaryDirectory(prefix="rhapi-tls-bench-") as tmp:
        app = write_apps(tmp)
        servers = [Server(name, tmp, app, args.server_core) for name in SERVERS]
        try:
            for server in servers:
                ciphers[server.name] = server.wait_ready()
            for round_no in range(args.rounds):
                for server in servers:
                    R.log("round %d: %s" % (round_no + 1, server.name))
                    for key, new in (("keep", False), ("new", True)):
                        res = wrk(args, server, new)
                        results[key].setdefault(server.name, []).append(res)
                        R.log("  %s %.0f/s" % (key, res["rps"]))
                    if not args.no_h2 and server.name != "bun":
                        res = h2(args, server)
                        results["h2"].setdefault(server.name, []).append(res)
                        R.log("  h2 %.0f/s" % res["rps"])
        finally:
            for server in servers:
                server.stop()
    text = report(args, results, ciphers, meta)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()

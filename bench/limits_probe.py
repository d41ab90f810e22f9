#!/usr/bin/env python3
"""Hostile probes of the limits (docs/reference.md, "Errors and limits") against one rhapi
binary: one huge allocation, stalled uploads, CSV splitting, argon2 and br load beside a hello
route, SIGTERM. Prints one line per probe; run it on two builds to compare them:

    python3 bench/limits_probe.py target/release/rhapi [pad,strpad,csv,stalled,argon,br,sigterm]
"""
import http.client, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time, statistics

BIN = sys.argv[1]
ROWS = sys.argv[2].split(",") if len(sys.argv) > 2 else ["pad", "strpad", "csv", "stalled", "argon", "br", "sigterm"]
PORT = 39000 + os.getpid() % 1000

ROUTES = {
    "pad.rhai": 'fn GET(req) { let a = []; a.pad(parse_int(req.query.n), 0); a.len() }',
    "strpad.rhai": 'fn GET(req) { let s = ""; s.pad(parse_int(req.query.n), \'x\'); s.len() }',
    "csv.rhai": 'const CONFIG = #{ body_limit: "40mb" };\nfn POST(req) { let lines = req.body.split("\\n"); lines.len() }',
    "hello.rhai": 'fn GET() { #{ message: "hi" } }',
    "login.rhai": 'fn POST(req) { let h = crypto::hash_password("correct horse"); #{ ok: crypto::verify_password(req.body.password, h) } }',
    "echo.rhai": 'fn POST(req) { #{ n: req.body.len() } }',
    "sse.rhai": 'fn GET(req, res) { loop { res.event(#{ data: "x" }); sleep(5000); } }',
}


def app():
    d = tempfile.mkdtemp()
    os.makedirs(d + "/pages/api")
    os.makedirs(d + "/public")
    for name, src in ROUTES.items():
        open(d + "/pages/api/" + name, "w").write(src + "\n")
    open(d + "/public/big.txt", "w").write("".join("line %d of a large text file\n" % i for i in range(300000)))
    return d


def start(d, *args, mode="start"):
    p = subprocess.Popen([BIN, mode, d, "--port", str(PORT), "--hostname", "127.0.0.1", *args],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", PORT), 0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("no server")


def rss(p):
    for line in open("/proc/%d/status" % p.pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return -1


def req(method, path, body=None, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    t = time.perf_counter()
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data, time.perf_counter() - t
    except Exception as e:
        return "ERR " + type(e).__name__, b"", time.perf_counter() - t
    finally:
        c.close()


def peak_rss_while(p, fn):
    peak = [rss(p)]
    stop = threading.Event()
    def watch():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss(p))
            except Exception:
                return
            time.sleep(0.02)
    w = threading.Thread(target=watch); w.start()
    out = fn()
    stop.set(); w.join()
    return out, peak[0]


def hello_latency(n=200):
    lat = []
    for _ in range(n):
        s, _, t = req("GET", "/api/hello", timeout=30)
        lat.append(t * 1000)
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.99) - 1], lat[-1]


def under_load(fn_load, clients):
    stop = threading.Event()
    def loop():
        while not stop.is_set():
            fn_load()
    ts = [threading.Thread(target=loop) for _ in range(clients)]
    for t in ts: t.start()
    time.sleep(0.5)
    out = hello_latency()
    stop.set()
    for t in ts: t.join()
    return out


def main():
    d = app()
    res = {}
    if "pad" in ROWS:
        p = start(d, "--workers", "1")
        before = rss(p)
        (s, b, t), peak = peak_rss_while(p, lambda: req("GET", "/api/pad?n=200000000"))
        h = req("GET", "/api/hello")
        res["pad 2e8"] = "status %s in %.2fs, RSS %d -> peak %d -> %d MiB after, hello %s" % (s, t, before, peak, rss(p), h[0])
        p.kill(); p.wait()
    if "strpad" in ROWS:
        p = start(d, "--workers", "1")
        before = rss(p)
        (s, b, t), peak = peak_rss_while(p, lambda: req("GET", "/api/strpad?n=1000000000"))
        res["str pad 1e9"] = "status %s in %.2fs, RSS %d -> peak %d -> %d MiB after" % (s, t, before, peak, rss(p))
        p.kill(); p.wait()
    if "csv" in ROWS:
        p = start(d)
        body = "".join("%d,name %d,mail%d@example.com\n" % (i, i, i) for i in range(330000)).encode()
        before = rss(p)
        outs = []
        def three():
            ts = [threading.Thread(target=lambda: outs.append(req("POST", "/api/csv", body, {"Content-Type": "text/plain"}))) for _ in range(3)]
            for t in ts: t.start()
            for t in ts: t.join()
        _, peak = peak_rss_while(p, three)
        h = hello_latency(50)
        res["3 x %.1f MB CSV split by line" % (len(body) / 1e6)] = "statuses %s, RSS %d -> peak %d -> %d MiB, hello p50 %.1f ms after" % ([o[0] for o in outs], before, peak, rss(p), h[0])
        p.kill(); p.wait()
    if "stalled" in ROWS:
        p = start(d, "--max-in-flight", "20")
        socks = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", PORT))
            s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\nab")
            socks.append(s)
        time.sleep(0.3)
        t0 = time.time(); first = req("GET", "/api/hello")[0]; back = None
        while time.time() - t0 < 15:
            if req("GET", "/api/hello")[0] == 200:
                back = time.time() - t0; break
            time.sleep(0.1)
        res["20 stalled uploads, --max-in-flight 20"] = "hello first %s; 200 again after %s (sockets still open)" % (first, "%.1f s" % back if back else "never within 15 s")
        for s in socks: s.close()
        p.kill(); p.wait()
    if "argon" in ROWS:
        p = start(d, "--workers", "1")
        base = hello_latency()
        load = under_load(lambda: req("POST", "/api/login", json.dumps({"password": "wrong"}), {"Content-Type": "application/json"}), 8)
        res["hello, 8 clients looping wrong-password logins (1 worker)"] = "p50/p99/max %.1f/%.1f/%.1f ms (alone %.1f/%.1f/%.1f)" % (load + base)
        p.kill(); p.wait()
    if "br" in ROWS:
        p = start(d, "--workers", "1")
        base = hello_latency()
        load = under_load(lambda: req("GET", "/big.txt", headers={"Accept-Encoding": "br"}), 4)
        res["hello, 4 clients fetching an 8 MB text file with br (1 worker)"] = "p50/p99/max %.1f/%.1f/%.1f ms (alone %.1f/%.1f/%.1f)" % (load + base)
        p.kill(); p.wait()
    if "sigterm" in ROWS:
        p = start(d)
        time.sleep(0.3)
        t = time.time(); p.send_signal(signal.SIGTERM); p.wait(); idle = time.time() - t
        p = start(d)
        s = socket.create_connection(("127.0.0.1", PORT))
        s.sendall(b"GET /api/sse HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(4096)
        t = time.time(); p.send_signal(signal.SIGTERM)
        try:
            p.wait(40)
        except subprocess.TimeoutExpired:
            p.kill()
        sse = time.time() - t
        s.close()
        res["SIGTERM"] = "idle exit %.0f ms; with one SSE stream open %.2f s" % (idle * 1000, sse)
    shutil.rmtree(d)
    for k, v in res.items():
        print("%s: %s" % (k, v))


main()

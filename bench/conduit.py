#!/usr/bin/env python3
"""The RealWorld ("Conduit") example under load (stdlib only). Called by `bench/run.sh conduit`.

Per database (SQLite, then PostgreSQL in a schema of its own): a temp copy of examples/conduit
(plus the bench-only routes of bench/conduit/pages/api/bench) is served by
`rhapi start COPY --workers 1` pinned to the server core and seeded through the API itself
(20 users, 500 articles with 3 tags each, follows, favourites). Then, on a fresh server process
over the same data, wrk (pinned to the client core, with the Authorization header of a signed-in
user) measures GET /api/articles, GET /api/articles/feed, GET /api/articles/:slug and
POST /api/articles/:slug/comments; and, for the slowest of the two list routes, the bench-only
variants that leave out the database, the script or both (where the time goes), plus a
`perf record` of the server process when perf is installed. The report (Markdown) goes to
stdout and bench/out/conduit.md, the figures to bench/out/conduit.json.
"""

import argparse
import datetime
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (bench/run.py: servers, wrk parsing, CPU time, formatting)

CONDUIT = os.path.join(R.ROOT, "examples", "conduit")
HERE = os.path.join(R.BENCH, "conduit")
COMMENT_LUA = os.path.join(HERE, "comment.lua")
PG_URL = os.environ.get("RHAPI_BENCH_POSTGRES_URL") or os.environ.get(
    "RHAPI_TEST_POSTGRES_URL") or "postgres://postgres:rhapi-test@127.0.0.1:55432/rhapi_test"
JWT_SECRET = "conduit-bench-secret-0123456789abcdef0123456789abcdef"

USERS = 20
ARTICLES = 500
TAGS = ["dragons", "training", "rust", "rhai", "sql", "postgres", "sqlite", "http", "json",
        "cats", "coffee", "travel", "music", "books", "design", "testing", "web", "api",
        "cloud", "linux", "python", "history", "science", "food", "games"]
FOLLOWS_PER_USER = 5     # user i follows users i+1 .. i+5: the feed of each has 125 articles
FAVOURITES_PER_USER = 25  # random articles; the viewer also every 3rd of the newest 20
BODY = ("It is a truth universally acknowledged that a route which talks to a database will "
        "spend most of its time waiting on it. This article is here to give the benchmark a "
        "body of realistic length, with *some* markdown, a [link](https://example.com) and a "
        "list:\n\n- one\n- two\n- three\n\n") * 3

log = R.log


# ---------------------------------------------------------------------------------------------
# the app copy and the databases


def rhai_literal(v):
    """A JSON value as a Rhai expression (maps as #{...}, null as ())."""
    if v is None:
        return "()"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # \" \\ \n \uXXXX: Rhai reads the same escapes
    if isinstance(v, list):
        return "[" + ", ".join(rhai_literal(x) for x in v) + "]"
    return "#{ " + ", ".join("%s: %s" % (json.dumps(k), rhai_literal(x)) for k, x in v.items()) + " }"


def make_app(tmp, name, database_url):
    """A copy of examples/conduit with the bench routes and a .env of its own."""
    app = os.path.join(tmp, name)
    os.makedirs(app)
    for sub in ("pages", "migrations"):
        shutil.copytree(os.path.join(CONDUIT, sub), os.path.join(app, sub))
    shutil.copytree(os.path.join(HERE, "pages", "api", "bench"),
                    os.path.join(app, "pages", "api", "bench"))
    with open(os.path.join(app, ".env"), "w") as f:
        f.write("JWT_SECRET=%s\n" % JWT_SECRET)
        if database_url:
            f.write("DATABASE_URL=%s\n" % database_url)
    return app


def write_generated(app, rows_answer, response):
    """pages/api/bench/shape.rhai (the rows as a literal) and const.rhai (the answer as one)."""
    dest = os.path.join(app, "pages", "api", "bench")
    with open(os.path.join(HERE, "shape.rhai.in")) as f:
        shape = f.read().replace("@ROWS@", rhai_literal(rows_answer["rows"])).replace(
            "@COUNT@", str(rows_answer["count"]))
    with open(os.path.join(dest, "shape.rhai"), "w") as f:
        f.write(shape)
    with open(os.path.join(HERE, "const.rhai.in")) as f:
        const = f.read().replace("@RESPONSE@", rhai_literal(response))
    with open(os.path.join(dest, "const.rhai"), "w") as f:
        f.write(const)


def psql(url, sql):
    return subprocess.run(["psql", "-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                          capture_output=True, text=True).stdout


def pg_client_ports(pid, pg_port):
    """Local ports of pid's TCP connections to pg_port (its pool's connections)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return []
    ports = []
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[2].rsplit(":", 1)[1], 16) == pg_port and fields[9] in inodes:
                        ports.append(int(fields[1].rsplit(":", 1)[1], 16))
        except (OSError, StopIteration, IndexError, ValueError):
            pass
    return ports


def pg_backend_cpu(url, server_pid):
    """{pid: CPU seconds} of the PostgreSQL backends serving server_pid's connections (found by
    their client ports in pg_stat_activity; the server must be on this machine)."""
    ports = pg_client_ports(server_pid, urllib.parse.urlsplit(url).port or 5432)
    if not ports:
        return {}
    try:
        pids = psql(url, "SELECT pid FROM pg_stat_activity WHERE client_port IN (%s)"
                    % ",".join(map(str, ports))).split()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {int(p): R.cpu_seconds(int(p)) for p in pids if p.isdigit()}


# ---------------------------------------------------------------------------------------------
# HTTP


class Client:
    """One keep-alive connection; JSON in and out."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None, token=None, expect=(200, 201)):
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        if token:
            headers["Authorization"] = "Token " + token
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status not in expect:
            raise RuntimeError("%s %s answered %d: %r" % (method, path, resp.status, data[:400]))
        return json.loads(data) if data else None

    def close(self):
        self.conn.close()


def seed(port):
    """Users, articles, follows and favourites, through the API. Returns (tokens, slugs,
    {what: seconds})."""
    c, rng, took = Client(port), random.Random(15), {}
    t = time.perf_counter()
    tokens = []
    for i in range(USERS):
        u = c.call("POST", "/api/users", {"user": {
            "username": "user%02d" % i, "email": "user%02d@example.com" % i,
            "password": "password-%02d" % i}})["user"]
        tokens.append(u["token"])
    took["users"] = time.perf_counter() - t
    t = time.perf_counter()
    slugs = []
    for j in range(ARTICLES):
        a = c.call("POST", "/api/articles", {"article": {
            "title": "Article %03d: notes on %s" % (j, rng.choice(TAGS)),
            "description": "What user%02d learned about it, in short" % (j % USERS),
            "body": BODY, "tagList": rng.sample(TAGS, 3)}}, tokens[j % USERS])["article"]
        slugs.append(a["slug"])
    took["articles"] = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(USERS):
        for k in range(1, FOLLOWS_PER_USER + 1):
            c.call("POST", "/api/profiles/user%02d/follow" % ((i + k) % USERS), token=tokens[i])
    took["follows"] = time.perf_counter() - t
    t = time.perf_counter()
    favourites = 0
    for i in range(USERS):
        chosen = set(rng.sample(slugs, FAVOURITES_PER_USER))
        if i == 0:
            chosen |= set(slugs[::-1][:20:3])
        for s in sorted(chosen):
            c.call("POST", "/api/articles/%s/favorite" % s, token=tokens[i])
            favourites += 1
    took["favourites"] = time.perf_counter() - t
    c.close()
    return tokens, slugs, took, favourites


def check_page(what, got, count, some_favourited):
    arts = got.get("articles")
    ok = (isinstance(arts, list) and len(arts) == 20 and got.get("articlesCount") == count
          and all("body" not in a and len(a["tagList"]) == 3 and isinstance(a["favorited"], bool)
                  and "following" in a["author"] for a in arts)
          and (not some_favourited or any(a["favorited"] for a in arts)))
    if not ok:
        raise RuntimeError("%s: unexpected answer %r" % (what, json.dumps(got)[:400]))


# ---------------------------------------------------------------------------------------------
# wrk


def wrk(args, port, path, duration, token, lua=None, latency=True, conns=None):
    cmd = ["taskset", "-c", args.client_core, "wrk"] + (["--latency"] if latency else []) + [
        "-t1", "-c%d" % (conns or args.connections), "-d%ds" % duration, "--timeout", "10s",
        "-H", "Authorization: Token " + token] + (["-s", lua] if lua else []) + [
        "http://127.0.0.1:%d%s" % (port, path)]
    return R.parse_wrk(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def measure(args, srv, path, token, lua=None, pg=None, label="", conns=None):
    """Warm-up, then the measured run: wrk's figures plus CPU per request of the server (and of
    its PostgreSQL backends when `pg` is the PostgreSQL URL)."""
    wrk(args, srv.port, path, args.warmup, token, lua, latency=False, conns=conns)
    pg_before = pg_backend_cpu(pg, srv.proc.pid) if pg else {}
    before = R.cpu_seconds(srv.proc.pid)
    res = wrk(args, srv.port, path, args.duration, token, lua, conns=conns)
    res["cpu_us"] = (R.cpu_seconds(srv.proc.pid) - before) * 1e6 / max(1, res.get("requests", 0))
    if pg:
        after = pg_backend_cpu(pg, srv.proc.pid)
        spent = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in after.items())
        res["pg_cpu_us"] = spent * 1e6 / max(1, res.get("requests", 0))
        res["pg_backends"] = len(after)
    log("   %-34s %8.0f req/s  p99 %-9s CPU/req %s%s%s" % (
        label or path, res["rps"], R.fmt_us(res.get("p99")), R.fmt_cpu(res["cpu_us"]),
        "  + PostgreSQL %s" % R.fmt_cpu(res["pg_cpu_us"]) if pg else "",
        "  (%d non-2xx, %d socket errors)" % (res["non2xx"], res["errors"])
        if res["non2xx"] or res["errors"] else ""))
    return res


# ---------------------------------------------------------------------------------------------
# perf


def classify(dso, sym):
    s = sym.lower()
    if dso.startswith("[kernel") or dso == "[unknown]" and sym.startswith("0xffff"):
        return "kernel (TCP, syscalls, scheduling)"
    if any(k in s for k in ("sqlite3", "rusqlite", "tokio_postgres", "postgres_protocol",
                            "postgres_types", "batteries::db", "rhapi::db::",
                            "fallible_iterator")):
        return "database driver (sqlite3 / tokio-postgres, rows to maps)"
    if any(k in s for k in ("serde_json", "serde::", "::encoding", "json")):
        return "JSON (serde_json, encoding)"
    if "rhai" in s or "smartstring" in s or "btree" in s:
        return "script (rhai, its BTreeMap maps)"
    if any(k in s for k in ("malloc", "free", "realloc", "memcpy", "memmove", "memset", "alloc",
                            "memcmp", "strlen")):
        return "allocator, memcpy (shared by all)"
    if any(k in s for k in ("actix", "tokio", "mio", "http", "bytes", "h1", "hyper", "rhapi::")):
        return "HTTP and runtime (actix, tokio, rhapi)"
    if "pthread" in s or "futex" in s:
        return "locks (pthread)"
    return "other"


def perf_profile(args, srv, path, token, tmp):
    """perf record of the server process during a wrk run; self time grouped by component."""
    data = os.path.join(tmp, "perf.data")
    rec = subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-p", str(srv.proc.pid), "-o",
                            data, "--", "sleep", str(max(1, args.duration - 1))],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wrk(args, srv.port, path, args.duration, token, latency=False)
    rec.wait()
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-q",
                          "--sort", "dso,sym", "--percent-limit", "0"],
                         capture_output=True, text=True).stdout
    groups, top = {}, []
    for line in out.splitlines():
        m = re.match(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        g = "kernel (TCP, syscalls, scheduling)" if kind == "k" else classify(dso, sym)
        groups[g] = groups.get(g, 0.0) + pct
        if len(top) < 40:
            top.append((pct, g, sym[:110]))
    return {"groups": sorted(groups.items(), key=lambda x: -x[1]), "top": top}


# ---------------------------------------------------------------------------------------------
# one database


def run_db(args, db, tmp):
    log("== %s" % db)
    schema = None
    url = None
    if db == "postgres":
        schema = "conduit_bench_%d" % os.getpid()
        psql(args.postgres_url, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s "
             "CASCADE; CREATE SCHEMA %s" % (schema, schema))
        sep = "&" if "?" in args.postgres_url else "?"
        url = "%s%soptions=-csearch_path%%3D%s" % (args.postgres_url, sep, schema)
    try:
        return run_db_in(args, db, tmp, url)
    finally:
        if schema:
            try:
                psql(args.postgres_url, "SET client_min_messages = warning; "
                     "DROP SCHEMA IF EXISTS %s CASCADE" % schema)
            except (OSError, subprocess.CalledProcessError) as e:
                log("warning: could not drop schema %s: %s" % (schema, e))


def run_db_in(args, db, tmp, url):
    app = make_app(tmp, "conduit-copy-%s" % db, url)
    out = {"db": db}
    # 1. Seed on a first server, and read the rows behind the list routes for the variants.
    with R.Server("rhapi", app_dir=app, core=args.server_core) as srv:
        R.wait_ready(srv.proc, srv.port, path="/api/tags")
        t = time.perf_counter()
        tokens, slugs, took, favourites = seed(srv.port)
        out["seed_s"] = time.perf_counter() - t
        out["seed"] = took
        out["favourites"] = favourites
        log("   seeded %d users, %d articles, %d follows, %d favourites in %.1f s (%s)" % (
            USERS, ARTICLES, USERS * FOLLOWS_PER_USER, favourites, out["seed_s"],
            ", ".join("%s %.1f s" % kv for kv in took.items())))
        token = tokens[0]
        c = Client(srv.port)
        pages = {}
        for src, path, count in (("list", "/api/articles", ARTICLES),
                                 ("feed", "/api/articles/feed", FOLLOWS_PER_USER * ARTICLES // USERS)):
            got = c.call("GET", path, token=token)
            check_page(path, got, count, src == "list")
            pages[src] = {"response": got, "rows": c.call(
                "GET", "/api/bench/rows" + ("?src=feed" if src == "feed" else ""), token=token)}
            pages[src]["bytes"] = len(json.dumps(got, separators=(",", ":")))
        slug, comment_slug = slugs[-1], slugs[-2]
        got = c.call("GET", "/api/articles/" + slug, token=token)["article"]
        if got["body"] != BODY or not got["favorited"] or len(got["tagList"]) != 3:
            raise RuntimeError("GET /api/articles/:slug: unexpected %r" % json.dumps(got)[:300])
        got = c.call("POST", "/api/articles/%s/comments" % comment_slug,
                     {"comment": {"body": "first"}}, token=token)
        if got["comment"]["body"] != "first":
            raise RuntimeError("POST comments: unexpected %r" % got)
        c.close()

    routes = [
        ("list", "GET /api/articles", "/api/articles", None),
        ("feed", "GET /api/articles/feed", "/api/articles/feed", None),
        ("article", "GET /api/articles/:slug", "/api/articles/" + slug, None),
        ("comment", "POST /api/articles/:slug/comments",
         "/api/articles/%s/comments" % comment_slug, COMMENT_LUA),
        # The same with one connection: are the writers waiting on each other?
        ("comment1", "POST /api/articles/:slug/comments, wrk -c1",
         "/api/articles/%s/comments" % comment_slug, COMMENT_LUA),
    ]
    pg = args.postgres_url if url else None
    # 2. The routes, on a fresh server over the seeded data.
    with R.Server("rhapi", app_dir=app, core=args.server_core) as srv:
        R.wait_ready(srv.proc, srv.port, path="/api/tags")
        out["routes"] = {}
        for key, label, path, lua in routes:
            out["routes"][key] = measure(args, srv, path, token, lua, pg, label,
                                         conns=1 if key == "comment1" else None)
            out["routes"][key]["label"] = label
        out["rss_kib"] = srv.rss()
    if args.no_split:
        return out

    # 3. Where the time goes, for the slower list route: the same server (restarted, to load
    # the generated variants) with the bench-only routes.
    slow = max(("list", "feed"), key=lambda k: out["routes"][k]["cpu_us"] + out["routes"][k].get(
        "pg_cpu_us", 0.0))
    out["split_route"] = slow
    write_generated(app, pages[slow]["rows"], pages[slow]["response"])
    q = "?src=feed" if slow == "feed" else ""
    variants = [
        ("hello", "`#{ ok: true }`: HTTP, routing, a script call", "/api/bench/hello"),
        ("const", "the answer as a Rhai literal: build it, send it as JSON", "/api/bench/const"),
        ("shape", "the route without the database: token check, the rows as a literal, "
                  "`json::article` on each", "/api/bench/shape"),
        ("db", "the route's 4 queries (user, count, page, tags) with the same SQL, no "
               "shaping, a tiny answer",
         "/api/bench/db" + q),
        ("full", "the route itself", dict((r[0], r[2]) for r in routes)[slow]),
    ]
    with R.Server("rhapi", app_dir=app, core=args.server_core) as srv:
        R.wait_ready(srv.proc, srv.port, path="/api/tags")
        c = Client(srv.port)
        want = pages[slow]["response"]
        for name, path in (("const", "/api/bench/const"), ("shape", "/api/bench/shape")):
            got = c.call("GET", path, token=token)
            if got != want:
                raise RuntimeError("%s does not answer what %s does: %r" % (
                    path, slow, json.dumps(got)[:300]))
        c.close()
        # Rounds, the variants interleaved in each; per variant the round with the median
        # CPU/req (so its req/s and p99 come from the same run).
        runs = {name: [] for name, _, _ in variants}
        for rnd in range(args.split_rounds):
            for name, what, path in variants:
                runs[name].append(measure(args, srv, path, token, None, pg,
                                          "split %s (round %d)" % (name, rnd + 1)))
        out["split"] = {}
        for name, what, path in variants:
            rs = sorted(runs[name], key=lambda x: x["cpu_us"] + x.get("pg_cpu_us", 0.0))
            out["split"][name] = dict(rs[(len(rs) - 1) // 2], what=what, path=path,
                                      rounds_cpu_us=[x["cpu_us"] for x in runs[name]])
        if args.perf and shutil.which("perf"):
            log("   perf record on %s" % variants[-1][2])
            try:
                out["perf"] = perf_profile(args, srv, variants[-1][2], token, tmp)
            except (OSError, subprocess.CalledProcessError) as e:
                log("warning: perf failed: %s" % e)
    out["page_bytes"] = pages[slow]["bytes"]
    return out


# ---------------------------------------------------------------------------------------------
# report


def split_rows(s, pg):
    """(part, µs) from the variants' CPU per request; the total with PostgreSQL's own CPU."""
    cpu = {k: s[k]["cpu_us"] for k in s}
    parts = [
        ("HTTP, routing, a script call (`hello`)", cpu["hello"]),
        ("building the answer and writing it as JSON (`const` − `hello`)",
         cpu["const"] - cpu["hello"]),
        ("database calls in rhapi: 4 queries, rows to maps, thread hops (`db` − `hello`)",
         cpu["db"] - cpu["hello"]),
        ("script: the rest (`full` − `db` − `const` + `hello`)",
         cpu["full"] - cpu["db"] - cpu["const"] + cpu["hello"]),
    ]
    if pg:
        parts.append(("PostgreSQL's own backends (their CPU, other processes)",
                      s["full"].get("pg_cpu_us", 0.0)))
    return sum(us for _, us in parts), parts


def build_report(args, meta, results):
    L = ["# Conduit (examples/conduit) under load, %s" % meta["date"], ""]
    L.append("- commit `%s`%s; binary `target/release/rhapi` built at %s; `nproc` = %s; %s" % (
        meta["commit"], " (src/ or Cargo.* had uncommitted changes: the binary may include "
        "them)" if meta["dirty"] else "", meta["built"], meta["nproc"], meta["cpu"]))
    L.append("- `rhapi start COPY --workers 1` pinned to core %s; `wrk --latency -t1 -c%d -d%ds` "
             "pinned to core %s after a %d s warm-up, with `Authorization: Token <jwt>` of "
             "user00 (who follows 5 users and has favourited some of the newest articles)" % (
                 args.server_core, args.connections, args.duration, args.client_core,
                 args.warmup))
    L.append("- data: %d users, %d articles with 3 tags each (and a 0.6 KB body), %d follows, "
             "favourites as below; seeded through the API" % (USERS, ARTICLES,
                                                             USERS * FOLLOWS_PER_USER))
    L.append("- load average before / after: %s / %s (the 2-core machine is shared: compare "
             "within one run)" % (meta["load_before"], meta["load_after"]))
    L.append("- CPU/req: the rhapi process's user + system time over the measured run / "
             "requests. On PostgreSQL, `+ PG` is the CPU of the server's PostgreSQL backends "
             "(not pinned, not in CPU/req). Core busy = CPU/req × req/s: under 100 % the "
             "server waited (locks, PostgreSQL) or other work had the core (compare with "
             "`hello` below, which wrk alone cannot saturate)")
    if meta.get("skipped"):
        L.append("- **%s**" % meta["skipped"])
    L.append("")
    L.append("| route | database | req/s | p50 | p99 | CPU/req | server core busy | + PG CPU/req |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|")
    keys = ["list", "feed", "article", "comment", "comment1"]
    for k in keys:
        for r in results:
            x = r["routes"][k]
            bad = " (%d non-2xx, %d socket errors)" % (x["non2xx"], x["errors"]) if (
                x["non2xx"] or x["errors"]) else ""
            L.append("| %s%s | %s | %s | %s | %s | %s | %.0f%% | %s |" % (
                x["label"], bad, r["db"], R.fmt_rps(x["rps"]), R.fmt_us(x.get("p50")),
                R.fmt_us(x.get("p99")), R.fmt_cpu(x["cpu_us"]), x["cpu_us"] * x["rps"] / 1e4,
                R.fmt_cpu(x["pg_cpu_us"]) if "pg_cpu_us" in x else "–"))
    L.append("")
    for r in results:
        L.append("- %s: seeded in %.1f s (%s), %d favourites; RSS after the load %s" % (
            r["db"], r["seed_s"], ", ".join("%s %.1f s" % kv for kv in r["seed"].items()),
            r["favourites"], R.fmt_mib(r["rss_kib"])))
    for r in results:
        if "split" not in r:
            continue
        s, pg = r["split"], r["db"] == "postgres"
        label = r["routes"][r["split_route"]]["label"]
        L.append("")
        L.append("## Where the time goes: %s on %s" % (label, r["db"]))
        L.append("")
        L.append("The list route with the most CPU per request (20 articles, %s bytes of JSON), "
                 "against bench-only "
                 "variants in the temp copy (`bench/conduit/`), same server, %d round(s) "
                 "interleaved, each variant's median round by CPU/req (CPU/req of every round "
                 "in the last column):" % (
                     "{:,}".format(r["page_bytes"]), args.split_rounds))
        L.append("")
        L.append("| variant | what it does | req/s | p99 | CPU/req | core busy%s | rounds |" % (
            " | + PG CPU/req" if pg else ""))
        L.append("|---|---|---:|---:|---:|---:%s|---|" % ("|---:" if pg else ""))
        for name in ("hello", "const", "shape", "db", "full"):
            x = s[name]
            L.append("| `%s` | %s | %s | %s | %s | %.0f%%%s | %s |" % (
                x["path"], x["what"], R.fmt_rps(x["rps"]), R.fmt_us(x.get("p99")),
                R.fmt_cpu(x["cpu_us"]), x["cpu_us"] * x["rps"] / 1e4,
                " | %s" % R.fmt_cpu(x.get("pg_cpu_us")) if pg else "",
                ", ".join("%.0f" % c for c in x["rounds_cpu_us"])))
        full, parts = split_rows(s, pg)
        L.append("")
        L.append("| part of one request | µs of CPU | share |")
        L.append("|---|---:|---:|")
        for name, us in parts:
            L.append("| %s | %.0f | %.0f%% |" % (name, us, 100.0 * us / full if full else 0))
        L.append("| total%s | %.0f | |" % (" (rhapi + PostgreSQL)" if pg else "", full))
        L.append("")
        L.append("Of the script part, shaping the 20 rows with `_lib/json.rhai` (`shape` − "
                 "`const`) is %.0f µs; the remainder (token and user, SQL building, grouping "
                 "the tags in `fetch`, module calls) %.0f µs. The database without the "
                 "shaping, the other way round (`full` − `shape`): %.0f µs." % (
                     s["shape"]["cpu_us"] - s["const"]["cpu_us"],
                     parts[3][1] - (s["shape"]["cpu_us"] - s["const"]["cpu_us"]),
                     s["full"]["cpu_us"] - s["shape"]["cpu_us"]))
        if r.get("perf"):
            L.append("")
            L.append("`perf record` of the rhapi process on the full route (self time, grouped "
                     "by symbol name; PostgreSQL's backends are other processes):")
            L.append("")
            L.append("| component | share of samples |")
            L.append("|---|---:|")
            for g, pct in r["perf"]["groups"]:
                L.append("| %s | %.1f%% |" % (g, pct))
            L.append("")
            L.append("<details><summary>top symbols</summary>")
            L.append("")
            L.append("| % | component | symbol |")
            L.append("|---:|---|---|")
            for pct, g, sym in r["perf"]["top"][:20]:
                L.append("| %.1f | %s | `%s` |" % (pct, g, sym.replace("|", "\\|")))
            L.append("")
            L.append("</details>")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=4, help="seconds of each measured wrk run")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--databases", default="sqlite,postgres", help="sqlite,postgres (a subset)")
    ap.add_argument("--postgres-url", default=PG_URL)
    ap.add_argument("--no-split", action="store_true", help="skip the where-the-time-goes runs")
    ap.add_argument("--split-rounds", type=int, default=2,
                    help="rounds of the where-the-time-goes variants (median CPU/req)")
    ap.add_argument("--no-perf", dest="perf", action="store_false", help="skip perf record")
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--client-core", default="1")
    ap.add_argument("--out", default=os.path.join(R.BENCH, "out", "conduit.md"))
    args = ap.parse_args()
    dbs = [d for d in args.databases.split(",") if d]
    # The app's .env must decide the database and the secret: the environment would win.
    for k in ("DATABASE_URL", "JWT_SECRET"):
        os.environ.pop(k, None)
    try:
        os.sched_setaffinity(0, {int(args.client_core)})
    except (AttributeError, OSError, ValueError):
        pass
    if not os.path.exists(R.RHAPI):
        sys.exit("%s is missing: cargo build --release --bin rhapi" % R.RHAPI)
    tmp = tempfile.mkdtemp(prefix="rhapi-conduit-bench-")
    # A copy of the binary: a build during the run cannot swap it.
    built = datetime.datetime.fromtimestamp(os.path.getmtime(R.RHAPI)).strftime("%Y-%m-%d %H:%M")
    R.RHAPI = shutil.copy2(R.RHAPI, os.path.join(tmp, "rhapi"))
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": R.git("rev-parse", "--short", "HEAD"),
        "dirty": bool(R.git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock")),
        "built": built, "nproc": os.cpu_count(), "cpu": "", "load_before": R.loadavg(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.+)", f.read())
            meta["cpu"] = m.group(1).strip() if m else ""
    except OSError:
        pass
    if "postgres" in dbs:
        try:
            psql(args.postgres_url, "SELECT 1")
        except (OSError, subprocess.CalledProcessError) as e:
            log("PostgreSQL skipped: psql cannot reach %s (%s); set RHAPI_BENCH_POSTGRES_URL "
                "or --postgres-url" % (args.postgres_url, getattr(e, "stderr", e)))
            dbs.remove("postgres")
            meta["skipped"] = "PostgreSQL skipped: psql cannot reach --postgres-url"
    results = []
    try:
        for db in dbs:
            results.append(run_db(args, db, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta["load_after"] = R.loadavg()
    report = build_report(args, meta, results)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1, default=str)
    print(report)


if __name__ == "__main__":
    main()

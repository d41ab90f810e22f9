#!/usr/bin/env python3
"""Instructions per request of the Conduit article list under callgrind, as bench/instructions.py
counts them (200 warm-up on one keep-alive connection, callgrind_control -z, N measured, -d).

  python3 bench/conduit_instructions.py seed  WORKTREE SEEDDIR      # seed once (no valgrind), keep app+token
  python3 bench/conduit_instructions.py count WORKTREE SEEDDIR OUTPREFIX [--requests 500] [--anon]

The app copy of bench/conduit.py (make_app, seed, check_page) is used as it is; the seeded
app dir (SQLite data/app.db) is copied afresh for every count, so both binaries read the same
data.
"""
import argparse
import importlib.util
import http.client
import json
import os
import shutil
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["seed", "count"])
ap.add_argument("worktree")
ap.add_argument("seeddir")
ap.add_argument("outprefix", nargs="?")
ap.add_argument("--requests", type=int, default=500)
ap.add_argument("--warmup", type=int, default=200)
ap.add_argument("--anon", action="store_true")
ap.add_argument("--path", default="/api/articles")
args = ap.parse_args()

sys.path.insert(0, os.path.join(os.path.abspath(args.worktree), "bench"))
import run as R  # noqa: E402
import conduit as C  # noqa: E402

# The counting itself is this script's own bench/instructions.py (the worktree's may be older).
_spec = importlib.util.spec_from_file_location(
    "instructions", os.path.join(os.path.dirname(os.path.abspath(__file__)), "instructions.py"))
I = importlib.util.module_from_spec(_spec)  # noqa: E741
_spec.loader.exec_module(I)

for k in ("DATABASE_URL", "JWT_SECRET"):
    os.environ.pop(k, None)
assert os.path.realpath(R.RHAPI).startswith(os.path.realpath(args.worktree)), R.RHAPI

if args.mode == "seed":
    os.makedirs(args.seeddir)
    app = C.make_app(args.seeddir, "app", None)
    with R.Server("rhapi", app_dir=app, core="0") as srv:
        R.wait_ready(srv.proc, srv.port, path="/api/tags")
        tokens, slugs, took, favs = C.seed(srv.port)
        c = C.Client(srv.port)
        got = c.call("GET", "/api/articles", token=tokens[0])
        C.check_page("/api/articles", got, C.ARTICLES, True)
        c.close()
    with open(os.path.join(args.seeddir, "token"), "w") as f:
        f.write(tokens[0])
    print("seeded with %s: %s, %d favourites" % (R.RHAPI, took, favs))
    sys.exit(0)

token = None if args.anon else open(os.path.join(args.seeddir, "token")).read().strip()
tmp = tempfile.mkdtemp(prefix="conduit-instr-")
app = os.path.join(tmp, "app")
shutil.copytree(os.path.join(args.seeddir, "app"), app)
headers = {"Authorization": "Token " + token} if token else {}


def loop(port, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        for _ in range(n):
            conn.request("GET", args.path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError("%s answered %d" % (args.path, resp.status))
    finally:
        conn.close()


out = os.path.join(tmp, "cg")
wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.%%p" % out]
try:
    with R.Server("rhapi", app_dir=app, core="0", wrapper=wrapper) as srv:
        R.wait_ready(srv.proc, srv.port, path="/api/tags", timeout=180)
        c = C.Client(srv.port)
        got = c.call("GET", args.path, token=token)
        C.check_page(args.path, got, C.ARTICLES, token is not None)
        c.close()
        with open(args.outprefix + ".body.json", "w") as f:
            json.dump(got, f, sort_keys=True, indent=1)
        loop(srv.port, args.warmup)
        t = time.time()
        total, dump = I.counted(srv.proc, out, lambda: loop(srv.port, args.requests))
        took = time.time() - t
        shutil.copy(dump, args.outprefix + ".callgrind.out")
    print("binary %s" % R.RHAPI)
    print("GET %s (%s), %d requests after %d warm-up, one keep-alive connection: "
          "%d instructions total, %.0f per request (%.1f s under callgrind)" % (
              args.path, "logged in" if token else "anonymous", args.requests, args.warmup,
              total, total / args.requests, took))
finally:
    shutil.rmtree(tmp, ignore_errors=True)

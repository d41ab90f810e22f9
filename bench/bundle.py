#!/usr/bin/env python3
"""One file to deploy: how long `rhapi start` takes to answer its first request when the
app is a bundle (`rhapi bundle`) and when it is a folder, side by side.

The app is the repository's own example app (the repository root: pages/, jobs/,
migrations/, public/). Each run starts in a new folder of its own (a copy of the app for the
folder, the bundle and nothing else for the bundle; each with the same .env), so both apply
the migration to a new SQLite file; the clock runs from spawning the process to the first
200 of GET /api/hello (polled every millisecond), and the process is stopped with SIGTERM.
Runs alternate folder, bundle, folder, ... so that the machine's load weighs on both alike.

    python3 bench/bundle.py [--runs 10] [--rhapi target/release/rhapi]

Python 3, stdlib only.
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP_PARTS = ["pages", "jobs", "migrations", "public", ".env.example"]
DEADLINE = 30.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_200(port):
    """True once GET /api/hello answers 200."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /api/hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            head = s.recv(64)
            return head.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def time_start(argv, cwd):
    """Milliseconds from spawn to the first 200."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), NO_COLOR="1")
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv + ["--hostname", "127.0.0.1"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not first_200(port):
            if proc.poll() is not None:
                raise SystemExit(f"{argv[0]} exited with {proc.returncode} before answering")
            if time.perf_counter() - started > DEADLINE:
                raise SystemExit(f"{argv[0]} did not answer within {DEADLINE} s")
            time.sleep(0.001)
        return (time.perf_counter() - started) * 1000.0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rhapi", default=os.path.join(ROOT, "target/release/rhapi"))
    args = parser.parse_args()
    rhapi = os.path.abspath(args.rhapi)

    work = tempfile.mkdtemp(prefix="rhapi-bench-bundle-")
    try:
        source = os.path.join(work, "source")
        os.makedirs(source)
        for part in APP_PARTS:
            src = os.path.join(ROOT, part)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(source, part))
            else:
                shutil.copy(src, os.path.join(source, part))
        bundle = os.path.join(work, "app.bundle")
        t0 = time.perf_counter()
        subprocess.run(
            [rhapi, "bundle", source, "-o", bundle], check=True, stdout=subprocess.DEVNULL
        )
        bundle_ms = (time.perf_counter() - t0) * 1000.0
        dotenv = open(os.path.join(ROOT, ".env.example")).read()

        folder_ms, bundle_runs = [], []
        for run in range(args.runs):
            app = os.path.join(work, f"folder-{run}")
            shutil.copytree(source, app)
            with open(os.path.join(app, ".env"), "w") as f:
                f.write(dotenv)
            folder_ms.append(time_start([rhapi, "start", "--no-watch"], app))

            here = os.path.join(work, f"bundle-{run}")
            os.makedirs(here)
            with open(os.path.join(here, ".env"), "w") as f:
                f.write(dotenv)
            bundle_runs.append(time_start([bundle, "start"], here))

        size = os.path.getsize(bundle)
        binary = os.path.getsize(rhapi)
        folder_med = statistics.median(folder_ms)
        bundle_med = statistics.median(bundle_runs)
        print(f"rhapi {binary / 1e6:.1f} MB, bundle {size / 1e6:.1f} MB "
              f"(+{(size - binary) / 1e3:.1f} KB), `rhapi bundle` took {bundle_ms:.0f} ms")
        print(f"runs: {args.runs} each, alternating; load average {os.getloadavg()[0]:.2f}")
        print()
        print("| start to first 200 (ms) | median | min | max |")
        print("|---|---|---|---|")
        print(f"| folder (`rhapi start --no-watch`) | {folder_med:.1f} | "
              f"{min(folder_ms):.1f} | {max(folder_ms):.1f} |")
        print(f"| bundle (`./app.bundle start`) | {bundle_med:.1f} | "
              f"{min(bundle_runs):.1f} | {max(bundle_runs):.1f} |")
        print()
        print(f"bundle - folder: {bundle_med - folder_med:+.1f} ms (median), "
              f"ratio {bundle_med / folder_med:.3f}")
        print("folder runs:", " ".join(f"{x:.1f}" for x in folder_ms))
        print("bundle runs:", " ".join(f"{x:.1f}" for x in bundle_runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`rhapi lsp` latency on a long script (stdlib only). Not a test: it prints figures.

It starts `rhapi lsp` (the binary given, default target/release/rhapi, else target/debug),
opens a generated route file of --lines lines (functions calling db::, req., res., an
import), then measures:

  change   didChange (one character typed, an incremental edit) -> publishDiagnostics:
           alternately a mistake (`let x = ;`, one error) and its fix (no diagnostic)
  complete completion right after `db::`, after `req.`, and of a plain name (request ->
           response)
  hover    hover on a `db::query` (request -> response)

Each is repeated --rounds times; the report gives the median, p90 and max in ms. Targets
(issue 25): diagnostics within 100 ms of a change, completion within 50 ms.

    python3 bench/lsp.py [--bin target/debug/rhapi] [--lines 2000] [--rounds 50]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def frame(message):
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Client:
    def __init__(self, binary, cwd):
        self.proc = subprocess.Popen(
            [binary, "lsp"], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        self.next_id = 0

    def send(self, message):
        self.proc.stdin.write(frame(message))
        self.proc.stdin.flush()

    def read(self):
        length = None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("rhapi lsp closed its output")
            line = line.strip()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.proc.stdout.read(length))

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            message = self.read()
            if message.get("id") == self.next_id and "method" not in message:
                return message

    def wait_diagnostics(self):
        while True:
            message = self.read()
            if message.get("method") == "textDocument/publishDiagnostics":
                return message["params"]["diagnostics"]


def generate(lines):
    """A route file of about `lines` lines: many helpers, then GET; line numbers of the
    `db::` and `req.` completion points and of the line the benchmark edits."""
    out = ['import "../lib/auth" as auth;', ""]
    n = 0
    while len(out) < lines - 12:
        out += [
            f"/// Helper {n}: reads rows.",
            f"fn helper_{n}(req, limit) {{",
            f"    let rows = db::query(\"SELECT id, title FROM notes WHERE id > ? LIMIT ?\", [{n}, limit]);",
            "    let names = [];",
            "    for row in rows {",
            "        names.push(`${row.title} (${row.id})`);",
            "    }",
            f"    if req.query.page != () {{ names.push(req.query.page); }}",
            "    #{ count: names.len(), names: names }",
            "}",
            "",
        ]
        n += 1
    edit_line = len(out) + 1
    out += [
        "fn GET(req, res) {",
        "    let user = auth::verify(req.cookies.session);",
        "    let x = 1;",
        "    let rows = db::",
        "    let page = req.",
        f"    res.json(helper_{n - 1}(req, 10))",
        "}",
    ]
    return "\n".join(out) + "\n", edit_line + 2, edit_line + 3, edit_line + 4


def stats(samples):
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    return f"median {statistics.median(samples):.2f} ms, p90 {p90:.2f} ms, max {samples[-1]:.2f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default = os.path.join(root, "target/release/rhapi")
    if not os.path.exists(default):
        default = os.path.join(root, "target/debug/rhapi")
    parser.add_argument("--bin", default=default)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    args.bin = os.path.abspath(args.bin)

    with tempfile.TemporaryDirectory() as app:
        os.makedirs(os.path.join(app, "pages/api"))
        os.makedirs(os.path.join(app, "pages/lib"))
        with open(os.path.join(app, "pages/lib/auth.rhai"), "w") as f:
            f.write("fn verify(token) { jwt::verify(token, \"k\") }\n")
        # The completion points end the statement early on purpose: the file has a
        # compile error there, as a file being typed does.
        text, edit_line, db_line, req_line = generate(args.lines)
        path = os.path.join(app, "pages/api/long.rhai")
        uri = "file://" + path
        client = Client(args.bin, app)
        client.request("initialize", {"processId": None, "rootUri": "file://" + app, "capabilities": {}})
        client.notify("initialized", {})
        started = time.perf_counter()
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "rhai", "version": 1, "text": text}})
        client.wait_diagnostics()
        opened = (time.perf_counter() - started) * 1000

        change, complete_db, complete_req, complete_plain, hover = [], [], [], [], []
        version = 1
        for i in range(args.rounds):
            # `let x = 1;` <-> `let x = ;`: delete or type the `1` (column 12).
            version += 1
            rng = {"start": {"line": edit_line - 1, "character": 12},
                   "end": {"line": edit_line - 1, "character": 13 if i % 2 == 0 else 12}}
            edit = {"range": rng, "text": "" if i % 2 == 0 else "1"}
            t = time.perf_counter()
            client.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version}, "contentChanges": [edit]})
            client.wait_diagnostics()
            change.append((time.perf_counter() - t) * 1000)

            # After `db::`, after `req.`, and a plain name (`l` of `let`: the whole file's
            # functions are read).
            points = ((complete_db, db_line, 19), (complete_req, req_line, 19),
                      (complete_plain, edit_line, 5))
            for samples, line, column in points:
                t = time.perf_counter()
                answer = client.request("textDocument/completion", {
                    "textDocument": {"uri": uri}, "position": {"line": line - 1, "character": column}})
                samples.append((time.perf_counter() - t) * 1000)
                assert answer.get("result"), answer
            t = time.perf_counter()
            answer = client.request("textDocument/hover", {
                "textDocument": {"uri": uri}, "position": {"line": 4, "character": 21}})
            hover.append((time.perf_counter() - t) * 1000)
            assert answer.get("result"), answer

        client.request("shutdown", None)
        client.notify("exit", None)
        client.proc.wait(timeout=10)

    print(f"rhapi lsp on a {text.count(chr(10))}-line script ({len(text):,} bytes), "
          f"{args.rounds} rounds, {args.bin}")
    print(f"- didOpen -> diagnostics (first, engine built): {opened:.1f} ms")
    print(f"- didChange -> publishDiagnostics: {stats(change)}")
    print(f"- completion after `db::`: {stats(complete_db)}")
    print(f"- completion after `req.`: {stats(complete_req)}")
    print(f"- completion of a plain name (the file's functions): {stats(complete_plain)}")
    print(f"- hover on `db::query`: {stats(hover)}")


if __name__ == "__main__":
    sys.exit(main())

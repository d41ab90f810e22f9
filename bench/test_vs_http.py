#!/usr/bin/env python3
"""Wall time of the example app's checks two ways: `rhapi test .` (in-process, a fresh
SQLite per test file) against the same requests and checks sent over HTTP to `rhapi start`
(server start-up included, one database in a temporary copy of the app).

    python3 bench/test_vs_http.py [path/to/rhapi]   (default: target/debug/rhapi)
"""
import http.client, json, os, shutil, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/rhapi"))
RUNS = 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)

    def request(self, method, path, body=None, cookie=None):
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["content-type"] = "application/json"
        if cookie:
            headers["cookie"] = cookie
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        session = None
        for name, value in r.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                session = value.split(";")[0]
        return r.status, parsed, session, r.getheaders()


def checks(c, tag):
    """The assertions of tests/app/*.test.rhai, over HTTP."""
    def signup(email, pw="correct horse"):
        return c.request("POST", "/api/auth/signup", {"email": f"{tag}{email}", "password": pw})
    # auth
    s, j, ada, _ = signup("ada@example.com"); assert s == 201 and j["email"] == f"{tag}ada@example.com"
    s, j, _, _ = c.request("GET", "/api/auth/me", cookie=ada); assert s == 200
    assert signup("bob@example.com", "hunter2hunter2")[0] == 201
    assert signup("bob@example.com", "another password")[0] == 409
    signup("cy@example.com")
    assert c.request("POST", "/api/auth/login", {"email": f"{tag}cy@example.com", "password": "nope nope"})[0] == 401
    s, _, cy, _ = c.request("POST", "/api/auth/login", {"email": f"{tag}cy@example.com", "password": "correct horse"}); assert s == 200 and cy
    assert c.request("GET", "/api/auth/me")[0] == 401
    assert c.request("GET", "/api/auth/me", cookie="session=not.a.token")[0] == 401
    assert c.request("POST", "/api/auth/logout", {})[0] == 204
    # notes
    assert c.request("GET", "/api/notes")[0] == 401
    assert c.request("POST", "/api/notes", {"title": "x"})[0] == 401
    _, _, ada2, _ = signup("ada2@example.com")
    s, note, _, _ = c.request("POST", "/api/notes", {"title": "Groceries", "body": "milk"}, ada2); assert s == 201
    url = f"/api/notes/{note['id']}"
    assert c.request("GET", url, cookie=ada2)[1]["title"] == "Groceries"
    s, j, _, _ = c.request("PUT", url, {"body": "milk, eggs"}, ada2); assert s == 200 and j["body"] == "milk, eggs"
    assert len(c.request("GET", "/api/notes", cookie=ada2)[1]) == 1
    assert c.request("DELETE", url, cookie=ada2)[0] == 204
    assert c.request("GET", url, cookie=ada2)[0] == 404
    _, _, ada3, _ = signup("ada3@example.com")
    _, _, bob2, _ = signup("bob2@example.com")
    note = c.request("POST", "/api/notes", {"title": "secret"}, ada3)[1]
    url = f"/api/notes/{note['id']}"
    assert c.request("GET", "/api/notes", cookie=bob2)[1] == []
    for m in ["GET", "PUT", "DELETE"]:
        assert c.request(m, url, {}, bob2)[0] == 404
    # validation
    for i in ["abc", "0", "-1", "99999999999999999999"]:
        assert c.request("GET", f"/api/users/{i}")[0] == 400
    assert c.request("GET", "/api/users/42")[1]["id"] == 42
    assert c.request("DELETE", "/api/users/42")[0] == 204
    assert c.request("POST", "/api/auth/signup")[0] == 400
    assert c.request("POST", "/api/auth/signup", {"email": "a@example.com"})[0] == 400
    assert c.request("POST", "/api/auth/signup", {"email": 5, "password": "correct horse"})[0] == 422
    assert c.request("POST", "/api/auth/signup", {"email": "ada", "password": "correct horse"})[0] == 400
    assert c.request("POST", "/api/auth/signup", {"email": "x@example.com", "password": "short"})[0] == 400
    assert c.request("GET", "/api/greet")[0] == 400
    assert c.request("GET", "/api/greet?name=Ada")[1]["text"] == "Hello, Ada!"
    assert c.request("PATCH", "/api/hello")[0] == 405


def over_http(run):
    app = tempfile.mkdtemp()
    try:
        for part in ["pages", "migrations"]:
            shutil.copytree(os.path.join(ROOT, part), os.path.join(app, part))
        shutil.copy(os.path.join(ROOT, ".env.example"), os.path.join(app, ".env"))
        port = free_port()
        started = time.perf_counter()
        server = subprocess.Popen([BIN, "start", app, "--port", str(port), "--hostname", "127.0.0.1", "--no-watch"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.005)
            checks(Client(port), f"r{run}")
            return time.perf_counter() - started
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(app, ignore_errors=True)


def in_process():
    started = time.perf_counter()
    subprocess.run([BIN, "test", ROOT], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"})
    return time.perf_counter() - started


def median(xs):
    return sorted(xs)[len(xs) // 2]


if __name__ == "__main__":
    test_times = [in_process() for _ in range(RUNS)]
    http_times = [over_http(i) for i in range(RUNS)]
    t, h = median(test_times), median(http_times)
    print(f"rhapi test .            median of {RUNS}: {t * 1000:.0f} ms")
    print(f"rhapi start + HTTP      median of {RUNS}: {h * 1000:.0f} ms")
    print(f"ratio (HTTP / rhapi test): {h / t:.2f}")

#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol (CDP), Python standard library only.

Run by tests/browser.rs; prints one line per step and exits 1 on the first failure.

    drive.py --chromium /usr/bin/chromium notes http://127.0.0.1:PORT/
        The example app: sign up, log out, log in, add a note and see it listed, through
        the page's own buttons; then reload the page and see the note again; then open a
        second tab, add a note in the first and see it appear in the second without a
        reload (a WebSocket), and delete it in the second and see it go from the first.
    drive.py --chromium /usr/bin/chromium cors http://127.0.0.1:OTHER/cors.html?api=... allowed|refused
        A page of another origin calls the API with fetch; `allowed` expects the answer,
        `refused` expects the browser to withhold it (fetch fails).
"""

import base64
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

DEADLINE = 30.0


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebSocket:
    """Just enough of RFC 6455 for CDP: masked text frames out, unfragmented or continued frames in."""

    def __init__(self, url):
        assert url.startswith("ws://")
        host_port, path = url[5:].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=DEADLINE)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                fail("DevTools closed the websocket handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            fail(f"websocket handshake refused: {head!r}")

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                fail("DevTools closed the websocket")
            data += chunk
        return data

    def send(self, text):
        payload = text.encode()
        header = bytes([0x81])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def receive(self):
        message = b""
        while True:
            first, second = self._exact(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            opcode = first & 0x0F
            if opcode == 0x8:
                fail("DevTools closed the websocket")
            if opcode in (0x9, 0xA):
                continue  # ping / pong
            message += payload
            if first & 0x80:
                return message.decode()


class Browser:
    def __init__(self, chromium):
        self.profile = tempfile.mkdtemp(prefix="rhapi-chromium-")
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={self.profile}",
                f"--remote-debugging-port={self.port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        self.next_id = 0
        started = time.time()
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/json/list")
                targets = json.loads(conn.getresponse().read())
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
                    break
            except (OSError, ValueError):
                pass
            if self.process.poll() is not None:
                fail(f"chromium exited with {self.process.returncode} before DevTools answered")
            if time.time() - started > DEADLINE:
                fail("DevTools never answered")
            time.sleep(0.1)
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == me:
                if "error" in message:
                    fail(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            fail(f"{expression}: {result['exceptionDetails'].get('text')} {result['result'].get('description')}")
        return result["result"].get("value")

    def wait_for(self, what, expression):
        started = time.time()
        # While a page (re)loads its elements may not exist yet: that is "not yet".
        guarded = f"(() => {{ try {{ return {expression}; }} catch (e) {{ return false; }} }})()"
        while True:
            value = self.evaluate(guarded)
            if value:
                print(f"ok: {what}", flush=True)
                return value
            if time.time() - started > DEADLINE:
                state = self.evaluate("document.body ? document.body.innerText : '(no body)'")
                fail(f"{what}: not after {DEADLINE}s; the page shows:\n{state}")
            time.sleep(0.05)

    def open(self, url):
        self.call("Page.navigate", url=url)
        self.wait_for(f"loaded {url}", "document.readyState === 'complete' && location.href !== 'about:blank'")

    def close(self):
        try:
            self.call("Browser.close")
        except SystemExit:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Tab(Browser):
    """A second page of the same browser (same cookies), driven like the first."""

    def __init__(self, browser):
        self.next_id = 0
        conn = http.client.HTTPConnection("127.0.0.1", browser.port, timeout=DEADLINE)
        conn.request("PUT", "/json/new?about:blank")
        target = json.loads(conn.getresponse().read())
        self.ws = WebSocket(target["webSocketDebuggerUrl"])
        self.call("Page.enable")
        self.call("Runtime.enable")

    def close(self):
        pass


def fill(browser, element_id, value):
    browser.evaluate(f"document.getElementById({json.dumps(element_id)}).value = {json.dumps(value)}")


def click(browser, element_id):
    browser.evaluate(f"document.getElementById({json.dumps(element_id)}).click()")


def text_of(element_id):
    return f"(document.getElementById({json.dumps(element_id)}).textContent || '')"


def notes(browser, url):
    browser.open(url)
    browser.wait_for("the page's script ran", f"{text_of('notes')}.length > 0")
    fill(browser, "email", "ada@example.com")
    fill(browser, "password", "correct horse battery")
    click(browser, "signup")
    browser.wait_for("signed up", f"{text_of('status')}.includes('Signed in as ada@example.com')")
    click(browser, "logout")
    browser.wait_for("logged out", f"{text_of('status')}.includes('Not signed in')")
    browser.wait_for("notes need a session", f"{text_of('notes')}.includes('sign in first')")
    fill(browser, "password", "wrong password")
    click(browser, "login")
    browser.wait_for("a wrong password is refused", f"{text_of('status')}.includes('wrong email or password')")
    fill(browser, "password", "correct horse battery")
    click(browser, "login")
    browser.wait_for("logged in", f"{text_of('status')}.includes('Signed in as ada@example.com')")
    browser.wait_for("no notes yet", f"{text_of('notes')}.includes('No notes yet')")
    fill(browser, "note-title", "Buy milk")
    fill(browser, "note-body", "and eggs")
    click(browser, "add-note")
    browser.wait_for("the note is listed", f"{text_of('notes')}.includes('Buy milk') && {text_of('notes')}.includes('and eggs')")
    browser.call("Page.reload")
    browser.wait_for("still signed in after a reload", f"{text_of('status')}.includes('Signed in as ada@example.com')")
    browser.wait_for("the note is listed after a reload", f"{text_of('notes')}.includes('Buy milk')")
    live_notes(browser, url)


def live_notes(first, url):
    second = Tab(first)
    second.open(url)
    second.wait_for("the second tab is signed in", f"{text_of('status')}.includes('Signed in as ada@example.com')")
    second.wait_for("the second tab lists the note", f"{text_of('notes')}.includes('Buy milk')")
    first.wait_for("the first tab is live", f"{text_of('live')}.includes('on')")
    second.wait_for("the second tab is live", f"{text_of('live')}.includes('on')")
    fill(first, "note-title", "Call the plumber")
    click(first, "add-note")
    second.wait_for("a note added in the first tab appears in the second without a reload", f"{text_of('notes')}.includes('Call the plumber')")
    second.evaluate("[...document.querySelectorAll('#notes li')].find((li) => li.textContent.includes('Buy milk')).querySelector('button').click()")
    first.wait_for("a note deleted in the second tab goes from the first", f"!{text_of('notes')}.includes('Buy milk') && {text_of('notes')}.includes('Call the plumber')")


def cors(browser, url, expected):
    browser.open(url)
    result = browser.wait_for("the cross-origin call ended", f"{text_of('result')}.length > 0 && {text_of('result')}")
    print(f"result: {result}", flush=True)
    if expected == "allowed" and not result.startswith("ok:"):
        fail(f"the browser withheld an allowed answer: {result}")
    if expected == "refused" and not result.startswith("error:"):
        fail(f"the browser let a page of another origin read the answer: {result}")
    print(f"ok: cross-origin call {expected}", flush=True)


def main():
    args = sys.argv[1:]
    if len(args) < 4 or args[0] != "--chromium":
        fail(__doc__)
    chromium, scenario, rest = args[1], args[2], args[3:]
    browser = Browser(chromium)
    try:
        if scenario == "notes":
            notes(browser, rest[0])
        elif scenario == "cors":
            cors(browser, rest[0], rest[1])
        else:
            fail(f"unknown scenario {scenario}")
    finally:
        browser.close()
    print("PASS", flush=True)


if __name__ == "__main__":
    main()

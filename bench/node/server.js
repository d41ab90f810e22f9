// node:http peer of the rhapi bench app (bench/app/pages/api/): the same routes and JSON with
// node's own http module, no framework. No SQLite routes: node 20 has no built-in driver
// (node:sqlite came in 22.5) and a native addon is not wanted here.
//
// Run: node bench/node/server.js PORT     Env: UPSTREAM_URL for /api/slow.
"use strict";
const http = require("node:http");

const port = Number(process.argv[2] || 3000);
const upstream = process.env.UPSTREAM_URL;
// No script budget in node: the runaway route spins this long, then answers 504 as rhapi's
// budget does, blocking the event loop meanwhile.
const spinMs = Number(process.env.SPIN_MS || 2000);

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(data),
  });
  res.end(data);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  const q = req.url.indexOf("?");
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const m = req.method;
  try {
    if (path === "/api/hello" && m === "GET") {
      return send(res, 200, { message: "Hello from API route!" });
    }
    if (path === "/api/echo" && m === "POST") {
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        return send(res, 400, { error: "Invalid JSON body" });
      }
      return send(res, 200, body);
    }
    if (path.startsWith("/api/users/") && m === "GET") {
      const id = decodeURIComponent(path.slice("/api/users/".length));
      const params = new URLSearchParams(q < 0 ? "" : req.url.slice(q + 1));
      return send(res, 200, { id, fields: params.get("fields"), sort: params.get("sort") });
    }
    if (path === "/api/work" && m === "GET") {
      const items = [];
      for (let i = 0; i < 100; i++) {
        items.push({ id: i, name: "item " + i, price: i * 3, tags: ["a", "b"], active: i % 2 === 0 });
      }
      return send(res, 200, { count: items.length, items });
    }
    if (path === "/api/slow" && m === "GET") {
      const r = await fetch(upstream);
      return send(res, 200, await r.json());
    }
    if (path === "/api/spin" && m === "GET") {
      const end = performance.now() + spinMs;
      let n = 0;
      while (performance.now() < end) n++;
      return send(res, 504, { error: "Script timed out" });
    }
    if (path === "/api/sse" && m === "GET") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      let i = 0;
      const tick = () => {
        res.write(`id: ${i}\ndata: tick ${i}\n\n`);
        if (++i === 30) {
          clearInterval(timer);
          res.end();
        }
      };
      const timer = setInterval(tick, 1000);
      res.on("close", () => clearInterval(timer));
      return tick();
    }
    return send(res, 404, { error: "Not Found" });
  } catch (e) {
    return send(res, 500, { error: "Internal Server Error" });
  }
});
// Slow upstreams and SSE: node's 5 s keep-alive default is fine, but no request timeout.
server.requestTimeout = 0;
server.listen(port, "127.0.0.1");

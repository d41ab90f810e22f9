// Fastify peer of the rhapi bench app (bench/app/pages/api/): the same routes and JSON, the
// Fastify way (schema-less routes, its own JSON body parser). No SQLite routes (node 20 has
// no built-in driver). Fastify comes from npm: bench/run.sh runs `npm install` here.
//
// Run: node bench/fastify/server.js PORT     Env: UPSTREAM_URL for /api/slow.
"use strict";
const fastify = require("fastify")({ logger: false, bodyLimit: 1 << 20 });

const port = Number(process.argv[2] || 3000);
const upstream = process.env.UPSTREAM_URL;
// No script budget in node: the runaway route spins this long, then answers 504 as rhapi's
// budget does, blocking the event loop meanwhile.
const spinMs = Number(process.env.SPIN_MS || 2000);

fastify.get("/api/hello", async () => ({ message: "Hello from API route!" }));

fastify.post("/api/echo", async (req) => req.body);

fastify.get("/api/users/:id", async (req) => ({
  id: req.params.id,
  fields: req.query.fields ?? null,
  sort: req.query.sort ?? null,
}));

fastify.get("/api/work", async () => {
  const items = [];
  for (let i = 0; i < 100; i++) {
    items.push({ id: i, name: "item " + i, price: i * 3, tags: ["a", "b"], active: i % 2 === 0 });
  }
  return { count: items.length, items };
});

fastify.get("/api/slow", async () => {
  const r = await fetch(upstream);
  return r.json();
});

fastify.get("/api/spin", async (req, reply) => {
  const end = performance.now() + spinMs;
  let n = 0;
  while (performance.now() < end) n++;
  return reply.code(504).send({ error: "Script timed out" });
});

fastify.get("/api/sse", (req, reply) => {
  reply.hijack();
  const res = reply.raw;
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
  tick();
});

// A malformed JSON body: the same 400 answer as rhapi.
fastify.setErrorHandler((err, req, reply) => {
  if (err.statusCode === 400) return reply.code(400).send({ error: "Invalid JSON body" });
  return reply.code(err.statusCode || 500).send({ error: "Internal Server Error" });
});

fastify.listen({ port, host: "127.0.0.1" }).catch((e) => {
  console.error(e);
  process.exit(1);
});

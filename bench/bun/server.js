// Bun peer of the rhapi bench app (bench/app/pages/api/): the same routes and the same JSON,
// written the way a Bun user would, with Bun.serve's own router and no framework.
//
// Run: bench/bun/node_modules/@oven/bun-linux-x64/bin/bun bench/bun/server.js PORT [DB]
// Env: UPSTREAM_URL for /api/slow (bench/upstream.rs), DB defaults to bench/app/data/app.db.
import { Database } from "bun:sqlite";

const port = Number(process.argv[2] || 3000);
const dbPath = process.argv[3] || new URL("../app/data/app.db", import.meta.url).pathname;
const upstream = process.env.UPSTREAM_URL;
// Bun has no script budget: its runaway route spins this long and then answers as rhapi's
// budget does (504), blocking the event loop meanwhile.
const spinMs = Number(process.env.SPIN_MS || 2000);

const db = new Database(dbPath, { readonly: true });
const oneItem = db.query("SELECT id, name, price FROM items WHERE id = ?");
const firstItems = db.query("SELECT id, name, price FROM items ORDER BY id LIMIT 50");
const encoder = new TextEncoder();

const json = (body, status = 200) => Response.json(body, { status });

Bun.serve({
  port,
  hostname: "127.0.0.1",
  // Seconds a connection may stay quiet (Bun's maximum is 255): SSE streams and slow
  // upstreams must not be cut.
  idleTimeout: 255,
  routes: {
    "/api/hello": {
      GET: () => json({ message: "Hello from API route!" }),
    },
    "/api/echo": {
      POST: async (req) => {
        let body;
        try {
          body = await req.json();
        } catch {
          return json({ error: "Invalid JSON body" }, 400);
        }
        return json(body);
      },
    },
    "/api/users/:id": {
      GET: (req) => {
        const q = new URL(req.url).searchParams;
        return json({ id: req.params.id, fields: q.get("fields"), sort: q.get("sort") });
      },
    },
    "/api/work": {
      GET: () => {
        const items = [];
        for (let i = 0; i < 100; i++) {
          items.push({ id: i, name: "item " + i, price: i * 3, tags: ["a", "b"], active: i % 2 === 0 });
        }
        return json({ count: items.length, items });
      },
    },
    "/api/items": {
      GET: () => json(firstItems.all()),
    },
    "/api/items/:id": {
      GET: (req) => {
        const row = oneItem.get(Number.parseInt(req.params.id, 10));
        return row ? json(row) : json({ error: "no such item" }, 404);
      },
    },
    "/api/slow": {
      GET: async () => {
        const r = await fetch(upstream);
        return json(await r.json());
      },
    },
    "/api/spin": {
      GET: () => {
        const end = performance.now() + spinMs;
        let n = 0;
        while (performance.now() < end) n++;
        return json({ error: "Script timed out" }, 504);
      },
    },
    "/api/sse": {
      GET: () => {
        let i = 0;
        let timer;
        const stream = new ReadableStream({
          start(ctrl) {
            const tick = () => {
              ctrl.enqueue(encoder.encode(`id: ${i}\ndata: tick ${i}\n\n`));
              if (++i === 30) {
                clearInterval(timer);
                ctrl.close();
              }
            };
            tick();
            timer = setInterval(tick, 1000);
          },
          cancel() {
            clearInterval(timer);
          },
        });
        return new Response(stream, {
          headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
        });
      },
    },
  },
  fetch: () => json({ error: "Not Found" }, 404),
});

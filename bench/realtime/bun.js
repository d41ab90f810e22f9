// Bun peer of bench/realtime/app: the same four routes with Bun.serve's own WebSocket server
// (uWebSockets underneath) and its built-in publish/subscribe, no framework.
//
// Run: bench/bun/node_modules/@oven/bun-linux-x64/bin/bun bench/realtime/bun.js PORT
//
//   GET  /api/hello              {"message":"Hello from API route!"}
//   WS   /api/echo               every message sent back to its sender
//   WS   /api/sub?topic=t        subscribes to t, then sends "joined"
//   POST /api/publish?topic=t    server.publish(t, body), answers {"published":true}
const port = Number(process.argv[2] || 3000);

const server = Bun.serve({
  port,
  hostname: "127.0.0.1",
  idleTimeout: 255,
  routes: {
    "/api/hello": {
      GET: () => Response.json({ message: "Hello from API route!" }),
    },
    "/api/publish": {
      POST: async (req) => {
        const topic = new URL(req.url).searchParams.get("topic") ?? "t";
        server.publish(topic, await req.text());
        return Response.json({ published: true });
      },
    },
  },
  fetch(req, server) {
    const url = new URL(req.url);
    if (url.pathname === "/api/echo" || url.pathname === "/api/sub") {
      const data = { kind: url.pathname, topic: url.searchParams.get("topic") ?? "t" };
      if (server.upgrade(req, { data })) return;
      return new Response("Upgrade Required", { status: 426 });
    }
    return Response.json({ error: "Not found" }, { status: 404 });
  },
  websocket: {
    // As rhapi's default [realtime] ping_interval; no idle cut-off during a run.
    idleTimeout: 120,
    open(ws) {
      if (ws.data.kind === "/api/sub") {
        ws.subscribe(ws.data.topic);
        ws.send("joined");
      }
    },
    message(ws, msg) {
      ws.send(msg);
    },
  },
});

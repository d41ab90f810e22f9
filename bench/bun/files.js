// Bun peer of rhapi's public/ (bench/features.py): a folder served at `/` with Bun.file, the
// way a Bun user would without a framework. Each request looks the file up again (as rhapi
// does: files added or changed while serving are seen), a missing one is a 404.
//
// Run: bench/bun/node_modules/@oven/bun-linux-x64/bin/bun bench/bun/files.js PORT DIR
const port = Number(process.argv[2] || 3000);
const dir = (process.argv[3] || "public").replace(/\/+$/, "");

const notFound = () => Response.json({ error: "Not Found" }, { status: 404 });

Bun.serve({
  port,
  hostname: "127.0.0.1",
  async fetch(req) {
    const path = decodeURIComponent(new URL(req.url).pathname);
    // No dot segments or dot-files (rhapi answers those 400 / 404).
    if (path.includes("/.") || path.includes("\0")) return notFound();
    const file = Bun.file(dir + path);
    if (!(await file.exists())) return notFound();
    return new Response(file);
  },
});

// Bun's side of bench/tls.py: "Hello" at every path over HTTPS (Bun.serve's own `tls`).
// Usage: bun bench/bun/tls.js PORT CERT.pem KEY.pem
const [port, cert, key] = process.argv.slice(2);
Bun.serve({
  port: Number(port),
  hostname: "127.0.0.1",
  tls: { cert: Bun.file(cert), key: Bun.file(key) },
  fetch() {
    return new Response("Hello");
  },
});

export default function handler(req, res) {
  const items = [];
  for (let i = 0; i < 100; i++) {
    items.push({ id: i, name: "item " + i, price: i * 3, tags: ["a", "b"], active: i % 2 === 0 });
  }
  res.status(200).json({ count: items.length, items });
}

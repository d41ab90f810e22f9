export default function handler(req, res) {
  res.status(200).json({ id: req.query.id, fields: req.query.fields, sort: req.query.sort });
}

-- 1,000 rows for the db benchmark route (GET /api/items/[id]).
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    price INTEGER NOT NULL
);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO items (id, name, price) SELECT i, 'item ' || i, i * 3 FROM n;

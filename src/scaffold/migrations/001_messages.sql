-- Migrations run in name order, each once: at `rhapi dev` / `rhapi start`, when a new file
-- appears while `rhapi dev` runs, and with `rhapi migrate`. Never edit one that has run:
-- add 002_....sql instead.
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    text       TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

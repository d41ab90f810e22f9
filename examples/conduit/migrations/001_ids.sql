-- New ids come from one counter row per table (pages/api/_lib/ids.rhai): SQLite and
-- PostgreSQL share no auto-increment syntax, and a counter row is safe with any number of
-- app instances on one database.
CREATE TABLE ids (
    table_name TEXT PRIMARY KEY,
    last_id    BIGINT NOT NULL
);

-- Articles, their tags, and who favourited them.
-- Timestamps: CURRENT_TIMESTAMP is UTC in both engines (SQLite keeps it as text to the
-- second, PostgreSQL as a timestamptz); pages/api/_lib/json.rhai writes both as ISO 8601.
CREATE TABLE articles (
    id          BIGINT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    body        TEXT NOT NULL,
    author_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX articles_by_author ON articles (author_id);

CREATE TABLE article_tags (
    article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    PRIMARY KEY (article_id, tag)
);

CREATE INDEX article_tags_by_tag ON article_tags (tag);

CREATE TABLE favorites (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, article_id)
);

CREATE INDEX favorites_by_article ON favorites (article_id);

INSERT INTO ids (table_name, last_id) VALUES ('articles', 0);

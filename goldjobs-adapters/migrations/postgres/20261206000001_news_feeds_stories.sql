-- Stories: the id of the story an article belongs to (NULL = a story of its own).
ALTER TABLE news_articles ADD COLUMN story_id TEXT NULL;
CREATE INDEX news_articles_story_idx ON news_articles (story_id) WHERE story_id IS NOT NULL;

-- The health of each news feed, by a hash of its full URL (the URL shown has no credentials
-- or query).
CREATE TABLE news_feeds (
    feed_key             TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    category             TEXT NOT NULL,
    url                  TEXT NOT NULL,
    last_fetch_at        TIMESTAMPTZ NULL,
    last_status          TEXT NULL,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    next_fetch_at        TIMESTAMPTZ NULL,
    articles_total       BIGINT NOT NULL DEFAULT 0,
    last_error           TEXT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);

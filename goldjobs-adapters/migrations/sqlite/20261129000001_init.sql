-- goldjobs schema (CONTRACT.md §7), SQLite.
-- Money is TEXT holding the exact decimal string (never REAL).
-- Instants are TEXT in RFC 3339 UTC with exactly six fractional digits and `Z`
-- (e.g. 2026-11-29T20:27:12.000000Z), so text order is time order.
-- Booleans are INTEGER 0/1. JSON is TEXT.

CREATE TABLE symbols (
    code            TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    provider_symbol TEXT NOT NULL,
    active          INTEGER NOT NULL DEFAULT 1
) STRICT;

INSERT INTO symbols (code, name, provider_symbol, active) VALUES
    ('XAUUSD', 'Gold / US Dollar', 'XAU/USD', 1),
    ('XAGUSD', 'Silver / US Dollar', 'XAG/USD', 1),
    ('EURUSD', 'Euro / US Dollar', 'EUR/USD', 1),
    ('GBPUSD', 'British Pound / US Dollar', 'GBP/USD', 1),
    ('USDJPY', 'US Dollar / Japanese Yen', 'USD/JPY', 1),
    ('BTCUSD', 'Bitcoin / US Dollar', 'BTC/USD', 1)
ON CONFLICT (code) DO NOTHING;

CREATE TABLE price_ticks (
    symbol_code TEXT NOT NULL,
    price       TEXT NOT NULL,
    ts          TEXT NOT NULL
) STRICT;
CREATE INDEX price_ticks_symbol_ts_idx ON price_ticks (symbol_code, ts);
CREATE INDEX price_ticks_ts_idx ON price_ticks (ts);

CREATE TABLE predictions (
    id                     TEXT PRIMARY KEY,
    symbol_code            TEXT NOT NULL,
    question               TEXT NOT NULL,
    price_at_create        TEXT NOT NULL,
    price_at_verify        TEXT NULL,
    price_change_percent   TEXT NULL,
    verify_time            TEXT NOT NULL,
    verify_rule            TEXT NOT NULL CHECK (verify_rule IN ('auto', 'manual')),
    -- raw JSON text, key order kept (CONTRACT.md §6.4)
    auto_verify_conditions TEXT NULL,
    correct_option         TEXT NULL,
    status                 TEXT NOT NULL DEFAULT 'active'
                           CHECK (status IN ('active', 'ended', 'needs_review')),
    review_reason          TEXT NULL,
    price_source           TEXT NULL CHECK (price_source IN ('tick', 'provider_history', 'manual')),
    price_at_verify_ts     TEXT NULL,
    verified_at            TEXT NULL,
    created_at             TEXT NOT NULL,
    claimed_until          TEXT NULL
) STRICT;
CREATE INDEX predictions_due_idx ON predictions (status, verify_time, id);
CREATE INDEX predictions_verified_idx ON predictions (verified_at DESC) WHERE status = 'ended';

CREATE TABLE prediction_votes (
    prediction_id   TEXT NOT NULL REFERENCES predictions (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    selected_option TEXT NOT NULL,
    is_correct      INTEGER NULL,
    created_at      TEXT NOT NULL,
    -- its index also serves "votes by prediction_id"
    UNIQUE (prediction_id, user_id)
) STRICT;

CREATE TABLE user_prediction_stats (
    user_id              TEXT PRIMARY KEY,
    total_participations INTEGER NOT NULL DEFAULT 0,
    correct_count        INTEGER NOT NULL DEFAULT 0,
    accuracy_rate        TEXT NOT NULL DEFAULT '0',
    current_streak       INTEGER NOT NULL DEFAULT 0,
    max_streak           INTEGER NOT NULL DEFAULT 0,
    updated_at           TEXT NOT NULL
) STRICT;

CREATE TABLE news_articles (
    id              TEXT PRIMARY KEY,
    title           TEXT NOT NULL,
    summary         TEXT NOT NULL,
    content         TEXT NULL,
    url             TEXT NOT NULL,
    canonical_url   TEXT NOT NULL UNIQUE,
    source          TEXT NOT NULL,
    category        TEXT NOT NULL,
    thumbnail_url   TEXT NULL,
    published_at    TEXT NOT NULL,
    -- JSON array of symbol codes
    related_symbols TEXT NOT NULL DEFAULT '[]',
    created_at      TEXT NOT NULL
) STRICT;
CREATE INDEX news_articles_category_published_idx ON news_articles (category, published_at DESC);
CREATE INDEX news_articles_published_idx ON news_articles (published_at DESC);

CREATE TABLE device_tokens (
    user_id    TEXT NOT NULL,
    token      TEXT NOT NULL UNIQUE,
    platform   TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX device_tokens_user_idx ON device_tokens (user_id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NULL,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT NULL,
    created_at      TEXT NOT NULL
) STRICT;
-- due pending rows, claimed in id order: a partial index on the pending rows only, walked
-- in id order with next_attempt_at at hand; delivered and failed rows cost nothing here
CREATE INDEX outbox_pending_idx ON outbox (id, next_attempt_at) WHERE state = 'pending';

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NULL,
    term       INTEGER NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

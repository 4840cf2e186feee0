-- Verdicts that rest on real, dated prices (CONTRACT.md 0.2, §6.2, §6.7, §7).
--
-- SQLite cannot change a CHECK constraint in place, so `predictions` is rebuilt. The migration
-- runs in a transaction with foreign keys on, where dropping `predictions` would cascade into
-- `prediction_votes`; so `prediction_votes` is rebuilt beside it, referring to the new table,
-- and the old child is dropped before the old parent. Renaming the new parent then rewrites the
-- new child's reference to `predictions`.

-- the provider of each tick ('twelvedata', 'binance', 'demo'); NULL counts as a real provider
ALTER TABLE price_ticks ADD COLUMN source TEXT NULL;

CREATE TABLE predictions_new (
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
                           CHECK (status IN ('active', 'ended', 'needs_review', 'void')),
    review_reason          TEXT NULL,
    price_source           TEXT NULL CHECK (price_source IN ('tick', 'provider_history', 'manual')),
    price_at_verify_ts     TEXT NULL,
    verified_at            TEXT NULL,
    created_at             TEXT NOT NULL,
    claimed_until          TEXT NULL,
    -- the provider of the deciding price
    price_provider         TEXT NULL
) STRICT;
INSERT INTO predictions_new (id, symbol_code, question, price_at_create, price_at_verify,
    price_change_percent, verify_time, verify_rule, auto_verify_conditions, correct_option, status,
    review_reason, price_source, price_at_verify_ts, verified_at, created_at, claimed_until)
SELECT id, symbol_code, question, price_at_create, price_at_verify, price_change_percent,
    verify_time, verify_rule, auto_verify_conditions, correct_option, status, review_reason,
    price_source, price_at_verify_ts, verified_at, created_at, claimed_until
FROM predictions;
CREATE TABLE prediction_votes_new (
    prediction_id   TEXT NOT NULL REFERENCES predictions_new (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    selected_option TEXT NOT NULL,
    is_correct      INTEGER NULL,
    created_at      TEXT NOT NULL,
    -- its index also serves "votes by prediction_id"
    UNIQUE (prediction_id, user_id)
) STRICT;
INSERT INTO prediction_votes_new (prediction_id, user_id, selected_option, is_correct, created_at)
SELECT prediction_id, user_id, selected_option, is_correct, created_at FROM prediction_votes;

DROP TABLE prediction_votes;
DROP TABLE predictions;
ALTER TABLE predictions_new RENAME TO predictions;
ALTER TABLE prediction_votes_new RENAME TO prediction_votes;

CREATE INDEX predictions_due_idx ON predictions (status, verify_time, id);
CREATE INDEX predictions_verified_idx ON predictions (verified_at DESC) WHERE status = 'ended';

CREATE TRIGGER predictions_instant_format_insert
BEFORE INSERT ON predictions
WHEN NEW.verify_time NOT GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
  OR NEW.created_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
BEGIN
  SELECT RAISE(ABORT, 'predictions.verify_time and created_at must be RFC 3339 UTC with six fractional digits, e.g. 2026-11-29T12:00:00.000000Z');
END;

CREATE TRIGGER predictions_instant_format_update
BEFORE UPDATE OF verify_time ON predictions
WHEN NEW.verify_time NOT GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
BEGIN
  SELECT RAISE(ABORT, 'predictions.verify_time must be RFC 3339 UTC with six fractional digits, e.g. 2026-11-29T12:00:00.000000Z');
END;

-- statistics recomputed from one user's verified votes (corrections, voids, recompute-stats)
CREATE INDEX prediction_votes_user_idx ON prediction_votes (user_id);

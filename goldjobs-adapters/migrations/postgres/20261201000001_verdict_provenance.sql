-- Verdicts that rest on real, dated prices (CONTRACT.md 0.2, §6.2, §6.7, §7).
-- price_ticks.source: the provider of each tick ('twelvedata', 'binance', 'demo'); NULL (rows of
-- other programs or of 0.1) counts as a real provider. Adding a NULL column is metadata only.
ALTER TABLE price_ticks ADD COLUMN source TEXT NULL;
-- predictions.price_provider: the provider of the deciding price.
ALTER TABLE predictions ADD COLUMN price_provider TEXT NULL;
-- status 'void' (§6.7).
ALTER TABLE predictions DROP CONSTRAINT predictions_status_check;
ALTER TABLE predictions ADD CONSTRAINT predictions_status_check
    CHECK (status IN ('active', 'ended', 'needs_review', 'void'));
-- statistics recomputed from one user's verified votes (corrections, voids, recompute-stats)
CREATE INDEX prediction_votes_user_idx ON prediction_votes (user_id);

-- The next deadline per symbol (PredictionRepository::next_due, read about once a second by
-- the verifier's waker): a loose index scan steps from symbol to symbol and takes the first
-- verify_time of each, so the cost grows with the symbols, not with the active predictions.
-- Additive: older instances ignore it during a rolling deploy.
CREATE INDEX predictions_next_due_idx ON predictions (symbol_code, verify_time)
    WHERE status = 'active' AND verify_rule = 'auto';

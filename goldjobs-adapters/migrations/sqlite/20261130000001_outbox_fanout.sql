-- One `notify_voters` outbox row per verified prediction stands for one notification per voter
-- (CONTRACT.md §6.6): the prediction is named here, and claim_outbox expands the row a page
-- at a time into `notify` rows, keeping its place (the last user_id expanded) in the cursor and
-- how many voters are left (a hint for how many rows to take; never trusted for completeness).
ALTER TABLE outbox ADD COLUMN fanout_prediction_id TEXT NULL;
ALTER TABLE outbox ADD COLUMN fanout_cursor TEXT NULL;
ALTER TABLE outbox ADD COLUMN fanout_remaining INTEGER NULL;

-- Dispatchers claim deliverable rows only; fan-out rows have an index of their own.
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (id, next_attempt_at)
    WHERE state = 'pending' AND kind <> 'notify_voters';
CREATE INDEX outbox_fanout_pending_idx ON outbox (id, next_attempt_at)
    WHERE state = 'pending' AND kind = 'notify_voters';

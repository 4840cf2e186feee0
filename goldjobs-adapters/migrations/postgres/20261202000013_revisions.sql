-- Corrections and voids (CONTRACT.md §6.7). A `notify_voters` outbox row now says what its
-- voters are told: NULL = verified (every row written before), 'corrected' or 'voided'. A
-- voided row expands to every vote of the prediction (a void unmarks them); the others to the
-- marked votes, as before. Adding a NULL column is metadata only.
ALTER TABLE outbox ADD COLUMN fanout_kind TEXT NULL;

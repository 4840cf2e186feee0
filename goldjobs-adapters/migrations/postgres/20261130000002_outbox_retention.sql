-- RetentionJob deletes finished (delivered or failed) outbox rows by age, oldest first.
CREATE INDEX outbox_finished_idx ON outbox (created_at) WHERE state <> 'pending';

-- SQLite keeps instants as text and compares them as text, which is only time order when every
-- writer uses the one fixed format (RFC 3339 UTC, six fractional digits, `Z`). Programs other
-- than goldjobs write predictions and ticks, so refuse any other spelling instead of letting a
-- prediction be claimed hours early or a tick be picked out of order.

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

CREATE TRIGGER price_ticks_instant_format
BEFORE INSERT ON price_ticks
WHEN NEW.ts NOT GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
BEGIN
  SELECT RAISE(ABORT, 'price_ticks.ts must be RFC 3339 UTC with six fractional digits, e.g. 2026-11-29T12:00:00.000000Z');
END;

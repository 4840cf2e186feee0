-- Statistics take predictions in verify_time order (CONTRACT.md §6.1), also when one is verified
-- late (an admin resolving an old prediction in review, a prediction that waited for its
-- price): each stats row remembers the latest (verify_time, prediction id) it includes, so a
-- verification that sorts before it is recomputed from the votes instead of applied as a delta.
ALTER TABLE user_prediction_stats ADD COLUMN last_verify_time TEXT NULL;
ALTER TABLE user_prediction_stats ADD COLUMN last_prediction_id TEXT NULL;
UPDATE user_prediction_stats
SET (last_verify_time, last_prediction_id) = (
    SELECT p.verify_time, p.id
    FROM prediction_votes AS v JOIN predictions AS p ON p.id = v.prediction_id
    WHERE v.user_id = user_prediction_stats.user_id AND v.is_correct IS NOT NULL
      AND p.status = 'ended'
    ORDER BY p.verify_time DESC, p.id DESC
    LIMIT 1
);

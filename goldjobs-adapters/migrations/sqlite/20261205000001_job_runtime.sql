-- The job runtime's shared state: each job's pause flag and the last scheduled instant a
-- leader handled (fenced by its lease term), and the run history of every job.
CREATE TABLE job_controls (
    job               TEXT PRIMARY KEY,
    paused            INTEGER NOT NULL DEFAULT 0,
    changed_at        TEXT NULL,
    last_scheduled_at TEXT NULL,
    term              INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job         TEXT NOT NULL,
    instance    TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT NULL,
    summary     TEXT NULL
) STRICT;
CREATE INDEX job_runs_job_id ON job_runs (job, id DESC);

-- The job runtime's shared state: each job's pause flag and the last scheduled instant a
-- leader handled (fenced by its lease term), and the run history of every job.
CREATE TABLE job_controls (
    job               TEXT PRIMARY KEY,
    paused            BOOLEAN NOT NULL DEFAULT FALSE,
    changed_at        TIMESTAMPTZ NULL,
    last_scheduled_at TIMESTAMPTZ NULL,
    term              BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE job_runs (
    id          BIGSERIAL PRIMARY KEY,
    job         TEXT NOT NULL,
    instance    TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    duration_ms BIGINT NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT NULL,
    summary     TEXT NULL
);
CREATE INDEX job_runs_job_id ON job_runs (job, id DESC);

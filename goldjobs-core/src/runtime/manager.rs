//! JobManager: registers jobs, drives their schedules, reports status.

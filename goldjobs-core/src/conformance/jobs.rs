//! Conformance suite of [`JobStore`].

use super::{ok, unique, utc};
use crate::runtime::{JobRun, RunStatus, MAX_RUN_TEXT_CHARS};
use crate::JobStore;

/// Run every behaviour of this suite.
pub async fn run_all(store: &dyn JobStore) {
    pause_and_resume(store).await;
    last_scheduled_is_fenced_and_moves_forward(store).await;
    runs_newest_first_and_bounded(store).await;
    prune_keeps_the_newest_of_every_job(store).await;
}

fn control(
    store_controls: Vec<crate::runtime::JobControl>,
    job: &str,
) -> Option<crate::runtime::JobControl> {
    store_controls.into_iter().find(|c| c.job == job)
}

/// A job without a row is not listed; pausing creates it (with `changed_at`), resuming clears
/// the flag, and repeating a state keeps its `changed_at`.
pub async fn pause_and_resume(store: &dyn JobStore) {
    let job = unique("job");
    let none = control(ok(store.job_controls().await, "job_controls"), &job);
    assert!(
        none.is_none(),
        "a job nobody wrote for has no row: {none:?}"
    );
    let t1 = utc(2026, 12, 5, 12, 0, 0);
    let paused = ok(store.set_paused(&job, true, t1).await, "pause");
    assert!(paused.paused);
    assert_eq!(paused.changed_at, Some(t1));
    assert_eq!(paused.last_scheduled_at, None);
    let again = ok(
        store
            .set_paused(&job, true, utc(2026, 12, 5, 12, 5, 0))
            .await,
        "pause again",
    );
    assert_eq!(
        again.changed_at,
        Some(t1),
        "pausing a paused job changes nothing"
    );
    let listed = control(ok(store.job_controls().await, "job_controls"), &job);
    assert_eq!(
        listed.as_ref().map(|c| c.paused),
        Some(true),
        "listed paused: {listed:?}"
    );
    let t2 = utc(2026, 12, 5, 12, 10, 0);
    let resumed = ok(store.set_paused(&job, false, t2).await, "resume");
    assert!(!resumed.paused);
    assert_eq!(resumed.changed_at, Some(t2));
    let listed = control(ok(store.job_controls().await, "job_controls"), &job);
    assert_eq!(listed.map(|c| c.paused), Some(false));
}

/// The last scheduled instant only moves forward, and a write with a smaller term than the
/// last accepted one is refused (a stale leader); pausing keeps the schedule state.
pub async fn last_scheduled_is_fenced_and_moves_forward(store: &dyn JobStore) {
    let job = unique("job");
    let (t1, t2, t3) = (
        utc(2026, 12, 5, 12, 0, 0),
        utc(2026, 12, 5, 12, 15, 0),
        utc(2026, 12, 5, 12, 30, 0),
    );
    assert!(ok(
        store.set_last_scheduled(&job, t1, 3).await,
        "first write"
    ));
    assert!(ok(
        store.set_last_scheduled(&job, t2, 3).await,
        "same term, later"
    ));
    assert!(
        ok(
            store.set_last_scheduled(&job, t1, 3).await,
            "same term, earlier"
        ),
        "an earlier instant is accepted and ignored"
    );
    let c = control(ok(store.job_controls().await, "job_controls"), &job);
    assert_eq!(
        c.as_ref().and_then(|c| c.last_scheduled_at),
        Some(t2),
        "{c:?}"
    );
    assert_eq!(c.map(|c| c.term), Some(3));
    assert!(ok(
        store.set_last_scheduled(&job, t3, 4).await,
        "a newer leader"
    ));
    assert!(
        !ok(
            store
                .set_last_scheduled(&job, utc(2026, 12, 5, 12, 45, 0), 3)
                .await,
            "stale"
        ),
        "a stale leader's write is refused"
    );
    ok(store.set_paused(&job, true, t3).await, "pause");
    let c = control(ok(store.job_controls().await, "job_controls"), &job);
    assert_eq!(
        c.as_ref().and_then(|c| c.last_scheduled_at),
        Some(t3),
        "{c:?}"
    );
    assert_eq!(c.as_ref().map(|c| c.term), Some(4));
    assert_eq!(c.map(|c| c.paused), Some(true));
}

fn run(job: &str, minute: u32, status: RunStatus) -> JobRun {
    JobRun {
        job: job.to_owned(),
        instance: "instance-a".to_owned(),
        started_at: utc(2026, 12, 5, 12, minute, 0),
        duration_ms: u64::from(minute) * 10,
        status,
        error: (status != RunStatus::Ok).then(|| "provider said no".to_owned()),
        summary: (status == RunStatus::Ok).then(|| format!("run {minute}")),
    }
}

/// Runs come back newest first with every field; a history keeps only the newest `keep`;
/// texts are stored clipped; other jobs' histories are apart.
pub async fn runs_newest_first_and_bounded(store: &dyn JobStore) {
    let (job, other) = (unique("job"), unique("job"));
    for minute in 0..5 {
        let status = if minute == 3 {
            RunStatus::Failed
        } else {
            RunStatus::Ok
        };
        ok(
            store.record_run(&run(&job, minute, status), 3).await,
            "record",
        );
    }
    ok(
        store.record_run(&run(&other, 0, RunStatus::Ok), 3).await,
        "record other",
    );
    let runs = ok(store.recent_runs(&job, 10).await, "recent");
    let minutes: Vec<u32> = runs
        .iter()
        .map(|r| chrono::Timelike::minute(&r.started_at))
        .collect();
    assert_eq!(
        minutes,
        vec![4, 3, 2],
        "newest first, bounded to 3: {runs:?}"
    );
    assert_eq!(runs[1], run(&job, 3, RunStatus::Failed), "every field kept");
    assert_eq!(runs[0], run(&job, 4, RunStatus::Ok));
    let one = ok(store.recent_runs(&job, 1).await, "limit 1");
    assert_eq!(one.len(), 1);
    assert_eq!(ok(store.recent_runs(&other, 10).await, "other").len(), 1);
    assert!(ok(store.recent_runs(&unique("job"), 10).await, "unknown").is_empty());

    let long = JobRun {
        error: Some("x".repeat(MAX_RUN_TEXT_CHARS * 2)),
        ..run(&other, 1, RunStatus::Failed)
    };
    ok(store.record_run(&long, 3).await, "record long");
    let got = ok(store.recent_runs(&other, 1).await, "recent long");
    let error = got
        .first()
        .and_then(|r| r.error.clone())
        .unwrap_or_default();
    assert_eq!(
        error.chars().count(),
        MAX_RUN_TEXT_CHARS + 1,
        "stored clipped"
    );
}

/// `prune_runs` keeps the newest `keep` runs of each job. (It acts on every job of the store;
/// the other behaviours keep at most 3 runs of a job, so `keep` = 3 leaves them alone.)
pub async fn prune_keeps_the_newest_of_every_job(store: &dyn JobStore) {
    let (a, b) = (unique("job"), unique("job"));
    for minute in 0..6 {
        ok(
            store.record_run(&run(&a, minute, RunStatus::Ok), 100).await,
            "record a",
        );
    }
    for minute in 0..4 {
        ok(
            store.record_run(&run(&b, minute, RunStatus::Ok), 100).await,
            "record b",
        );
    }
    let deleted = ok(store.prune_runs(3).await, "prune");
    assert!(
        deleted >= 4,
        "3 of a and 1 of b deleted (at least): {deleted}"
    );
    let left: Vec<u32> = ok(store.recent_runs(&a, 10).await, "a")
        .iter()
        .map(|r| chrono::Timelike::minute(&r.started_at))
        .collect();
    assert_eq!(left, vec![5, 4, 3]);
    assert_eq!(ok(store.recent_runs(&b, 10).await, "b").len(), 3);
}

//! [`InMemoryJobs`]: the [`JobStore`] for one process.

use super::lock;
use crate::runtime::{JobControl, JobRun};
use crate::{JobStore, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Job controls and run histories in memory (the embedded default and tests). Histories are
/// bounded by the `keep` of each [`record_run`](JobStore::record_run).
#[derive(Debug, Default)]
pub struct InMemoryJobs {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    controls: HashMap<String, JobControl>,
    runs: HashMap<String, VecDeque<JobRun>>,
}

impl InMemoryJobs {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl JobStore for InMemoryJobs {
    async fn job_controls(&self) -> Result<Vec<JobControl>> {
        let st = lock(&self.state);
        let mut all: Vec<JobControl> = st.controls.values().cloned().collect();
        all.sort_by(|a, b| a.job.cmp(&b.job));
        Ok(all)
    }

    async fn set_paused(&self, job: &str, paused: bool, at: DateTime<Utc>) -> Result<JobControl> {
        let mut st = lock(&self.state);
        let control = st
            .controls
            .entry(job.to_owned())
            .or_insert_with(|| JobControl::new(job));
        if control.paused != paused || control.changed_at.is_none() {
            control.paused = paused;
            control.changed_at = Some(at);
        }
        Ok(control.clone())
    }

    async fn set_last_scheduled(&self, job: &str, at: DateTime<Utc>, term: u64) -> Result<bool> {
        let mut st = lock(&self.state);
        let control = st
            .controls
            .entry(job.to_owned())
            .or_insert_with(|| JobControl::new(job));
        if term < control.term {
            return Ok(false);
        }
        control.term = term;
        if control.last_scheduled_at.is_none_or(|last| last < at) {
            control.last_scheduled_at = Some(at);
        }
        Ok(true)
    }

    async fn record_run(&self, run: &JobRun, keep: u32) -> Result<()> {
        let mut st = lock(&self.state);
        let runs = st.runs.entry(run.job.clone()).or_default();
        runs.push_front(run.clone().clipped());
        runs.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        Ok(())
    }

    async fn recent_runs(&self, job: &str, limit: u32) -> Result<Vec<JobRun>> {
        let st = lock(&self.state);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(st
            .runs
            .get(job)
            .map(|runs| runs.iter().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn prune_runs(&self, keep: u32) -> Result<u64> {
        let mut st = lock(&self.state);
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        let mut deleted = 0u64;
        for runs in st.runs.values_mut() {
            let before = runs.len();
            runs.truncate(keep);
            deleted += (before - runs.len()) as u64;
        }
        st.runs.retain(|_, runs| !runs.is_empty());
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conforms() {
        let store = InMemoryJobs::new();
        crate::conformance::jobs::run_all(&store).await;
    }
}

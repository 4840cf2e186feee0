//! In-memory predictions, votes, user statistics and the verification outbox.
//!
//! [`InMemoryPredictions`] is one struct implementing both [`PredictionRepository`] and
//! [`OutboxRepository`]: `record_verifications` writes the outbox in the same atomic step as the
//! predictions, votes and statistics, so both live behind one mutex. It is what the unit tests,
//! the conformance suites and the embedded default (no database configured) use.
//!
//! Every method takes the lock once and never awaits while holding it, so each call is one
//! atomic step, also with many verifiers racing on the same instance.

use crate::model::*;
use crate::ports::{OutboxRepository, PredictionRepository};
use crate::verify::stats::{apply_result, stats_from_results};
use crate::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How many finished (delivered or failed) outbox rows are kept for inspection by default.
pub const DEFAULT_OUTBOX_RETENTION: usize = 10_000;

/// Predictions, votes, statistics and outbox held in memory (see the module docs).
#[derive(Debug)]
pub struct InMemoryPredictions {
    state: Mutex<State>,
    outbox_retention: usize,
}

impl Default for InMemoryPredictions {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Default)]
struct State {
    predictions: HashMap<String, Entry>,
    /// Every active auto prediction: the claimable ones, oldest first, and per symbol.
    due: DueIndex,
    /// Votes per prediction, by user id.
    votes: HashMap<String, BTreeMap<String, Vote>>,
    stats: HashMap<String, UserStats>,
    /// Per user, the `(verify_time, prediction id)` of the latest verified prediction their
    /// statistics include: a verification that sorts before it (a late manual resolution, a
    /// prediction that waited long for its price) cannot be applied as a delta and makes the
    /// user's statistics be recomputed instead.
    last_applied: HashMap<String, (DateTime<Utc>, String)>,
    outbox: BTreeMap<i64, OutboxEntry>,
    /// Ids of finished outbox rows, oldest first, for the retention limit.
    finished: VecDeque<i64>,
    next_outbox_id: i64,
}

/// The active auto predictions by `(verify_time, id)`: all of them (for `claim_due`) and per
/// symbol (for `next_due`).
#[derive(Debug, Default)]
struct DueIndex {
    all: BTreeSet<(DateTime<Utc>, String)>,
    by_symbol: HashMap<String, BTreeSet<(DateTime<Utc>, String)>>,
}

impl DueIndex {
    fn insert(&mut self, p: &Prediction) {
        self.all.insert((p.verify_time, p.id.clone()));
        self.by_symbol
            .entry(p.symbol_code.clone())
            .or_default()
            .insert((p.verify_time, p.id.clone()));
    }

    fn remove(&mut self, p: &Prediction) {
        let key = (p.verify_time, p.id.clone());
        self.all.remove(&key);
        if let Some(set) = self.by_symbol.get_mut(&p.symbol_code) {
            set.remove(&key);
            if set.is_empty() {
                self.by_symbol.remove(&p.symbol_code);
            }
        }
    }

    /// The earliest `verify_time` per symbol, earliest first, then by code.
    fn earliest(&self, limit: usize) -> Vec<DueSymbol> {
        let mut out: Vec<DueSymbol> = self
            .by_symbol
            .iter()
            .filter_map(|(code, set)| set.first().map(|(t, _)| DueSymbol::new(code, *t)))
            .collect();
        out.sort_by(|a, b| (a.verify_time, &a.symbol_code).cmp(&(b.verify_time, &b.symbol_code)));
        out.truncate(limit);
        out
    }
}

#[derive(Debug)]
struct Entry {
    prediction: Prediction,
    claimed_until: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct OutboxEntry {
    row: OutboxRow,
    leased_until: Option<DateTime<Utc>>,
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(to_chrono(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `list_predictions`' order: most recently verified first, never verified last (latest
/// `verify_time` first), then id.
fn listing_order(a: &Prediction, b: &Prediction) -> std::cmp::Ordering {
    match (a.verified_at, b.verified_at) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
    .then_with(|| b.verify_time.cmp(&a.verify_time))
    .then_with(|| a.id.cmp(&b.id))
}

fn is_due_candidate(p: &Prediction) -> bool {
    p.status == PredictionStatus::Active && p.verify_rule == VerifyRule::Auto
}

impl InMemoryPredictions {
    /// An empty repository keeping [`DEFAULT_OUTBOX_RETENTION`] finished outbox rows.
    pub fn new() -> Self {
        Self::with_outbox_retention(DEFAULT_OUTBOX_RETENTION)
    }

    /// An empty repository keeping at most `retention` finished (delivered or failed) outbox
    /// rows; older finished rows are dropped so a long-running embedded server does not grow
    /// without bound. Pending rows are never dropped.
    pub fn with_outbox_retention(retention: usize) -> Self {
        InMemoryPredictions {
            state: Mutex::new(State {
                next_outbox_id: 1,
                ..State::default()
            }),
            outbox_retention: retention,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied step: every mutation is
        // validated before it starts. So a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every stored prediction (for tests and inspection), by id.
    pub fn all_predictions(&self) -> Vec<Prediction> {
        let st = self.lock();
        let mut all: Vec<Prediction> = st
            .predictions
            .values()
            .map(|e| e.prediction.clone())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Every stored user's statistics (for tests and inspection), by user id.
    pub fn all_user_stats(&self) -> Vec<UserStats> {
        let st = self.lock();
        let mut all: Vec<UserStats> = st.stats.values().cloned().collect();
        all.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        all
    }

    /// Number of outbox rows still pending.
    pub fn pending_outbox(&self) -> usize {
        let st = self.lock();
        st.outbox
            .values()
            .filter(|e| e.row.state == OutboxState::Pending)
            .count()
    }

    fn finish_row(&self, st: &mut State, id: i64) {
        st.finished.push_back(id);
        while st.finished.len() > self.outbox_retention {
            if let Some(old) = st.finished.pop_front() {
                st.outbox.remove(&old);
            }
        }
    }
}

impl State {
    fn push_outbox(&mut self, payload: OutboxPayload, due: DateTime<Utc>) {
        let id = self.next_outbox_id;
        self.next_outbox_id += 1;
        self.outbox.insert(
            id,
            OutboxEntry {
                row: OutboxRow {
                    id,
                    payload,
                    state: OutboxState::Pending,
                    attempts: 0,
                    last_error: None,
                    next_attempt_at: due,
                },
                leased_until: None,
            },
        );
    }

    /// Apply one record; returns `None` when skipped, else whether it verified (`true`) or
    /// flagged for review (`false`) and how many votes it marked.
    fn apply(&mut self, record: &VerificationRecord) -> Option<(bool, u64)> {
        let entry = self.predictions.get_mut(&record.prediction_id)?;
        let eligible = match entry.prediction.status {
            PredictionStatus::Active => true,
            PredictionStatus::NeedsReview => record.manual,
            PredictionStatus::Ended | PredictionStatus::Void => false,
        };
        if !eligible {
            return None;
        }
        let p = &mut entry.prediction;
        self.due.remove(p);
        entry.claimed_until = None;
        match &record.outcome {
            VerificationOutcome::NeedsReview { reason } => {
                p.status = PredictionStatus::NeedsReview;
                p.review_reason = Some(reason.clone());
                Some((false, 0))
            }
            VerificationOutcome::Verified(v) => {
                p.status = PredictionStatus::Ended;
                p.correct_option = Some(v.correct_option.clone());
                p.price_at_verify = Some(v.price_at_verify);
                p.price_change_percent = v.price_change_percent;
                p.price_source = Some(v.price_source);
                p.price_provider = v.price_provider.clone();
                p.price_at_verify_ts = Some(v.price_at_verify_ts);
                p.verified_at = Some(record.verified_at);
                let event = PredictionVerified {
                    prediction_id: p.id.clone(),
                    symbol_code: p.symbol_code.clone(),
                    correct_option: v.correct_option.clone(),
                    price_at_verify: v.price_at_verify,
                    price_change_percent: v.price_change_percent,
                    price_source: v.price_source,
                    price_at_verify_ts: v.price_at_verify_ts,
                };
                let question = p.question.clone();
                let key = (p.verify_time, p.id.clone());
                let mut notices = Vec::new();
                let mut marked = 0u64;
                let mut late: BTreeSet<String> = BTreeSet::new();
                if let Some(votes) = self.votes.get_mut(&record.prediction_id) {
                    for vote in votes.values_mut() {
                        let correct = vote.selected_option == v.correct_option;
                        vote.is_correct = Some(correct);
                        marked += 1;
                        match self.last_applied.get_mut(&vote.user_id) {
                            Some(last) if *last > key => {
                                late.insert(vote.user_id.clone());
                            }
                            Some(last) => *last = key.clone(),
                            None => {
                                self.last_applied.insert(vote.user_id.clone(), key.clone());
                            }
                        }
                        // Look up before inserting: no key allocation for known users.
                        match self.stats.get_mut(&vote.user_id) {
                            Some(stats) => apply_result(stats, correct, record.verified_at),
                            None => {
                                let mut stats = UserStats::empty(&vote.user_id, record.verified_at);
                                apply_result(&mut stats, correct, record.verified_at);
                                self.stats.insert(vote.user_id.clone(), stats);
                            }
                        }
                        notices.push(VoterNotice::verified(
                            vote.user_id.clone(),
                            record.prediction_id.clone(),
                            question.clone(),
                            vote.selected_option.clone(),
                            correct,
                        ));
                    }
                }
                // Out of verify_time order for these voters: recompute them from all their
                // verified votes (the delta just applied is replaced).
                if !late.is_empty() {
                    self.recompute_users(&late, record.verified_at);
                }
                self.push_outbox(OutboxPayload::PredictionVerified(event), record.verified_at);
                for n in notices {
                    self.push_outbox(OutboxPayload::Notify(n), record.verified_at);
                }
                Some((true, marked))
            }
        }
    }
    /// Every user's verified results (votes marked on `ended` predictions) in `verify_time`
    /// order, then prediction id; only `users` when given.
    /// With each user's results, the `(verify_time, id)` of the user's latest verified
    /// prediction.
    #[allow(clippy::type_complexity)]
    fn verified_results(
        &self,
        users: Option<&BTreeSet<String>>,
    ) -> BTreeMap<String, (Vec<bool>, Option<(DateTime<Utc>, String)>)> {
        // per user: (verify_time, prediction id, right)
        type Results<'a> = Vec<(DateTime<Utc>, &'a str, bool)>;
        let mut by_user: BTreeMap<String, Results<'_>> = BTreeMap::new();
        for (pid, votes) in &self.votes {
            let Some(entry) = self.predictions.get(pid) else {
                continue;
            };
            let p = &entry.prediction;
            if p.status != PredictionStatus::Ended {
                continue;
            }
            for vote in votes.values() {
                let Some(correct) = vote.is_correct else {
                    continue;
                };
                if users.is_some_and(|u| !u.contains(&vote.user_id)) {
                    continue;
                }
                by_user.entry(vote.user_id.clone()).or_default().push((
                    p.verify_time,
                    pid.as_str(),
                    correct,
                ));
            }
        }
        by_user
            .into_iter()
            .map(|(user, mut results)| {
                results.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
                let last = results.last().map(|r| (r.0, r.1.to_owned()));
                (user, (results.into_iter().map(|r| r.2).collect(), last))
            })
            .collect()
    }

    /// Replace the statistics of `users` with the recomputation from their verified votes.
    fn recompute_users(&mut self, users: &BTreeSet<String>, now: DateTime<Utc>) -> u64 {
        let mut results = self.verified_results(Some(users));
        for user in users {
            let (r, last) = results.remove(user).unwrap_or_default();
            self.set_last_applied(user, last);
            self.stats
                .insert(user.clone(), stats_from_results(user.clone(), r, now));
        }
        users.len() as u64
    }

    fn set_last_applied(&mut self, user: &str, last: Option<(DateTime<Utc>, String)>) {
        match last {
            Some(last) => {
                self.last_applied.insert(user.to_owned(), last);
            }
            None => {
                self.last_applied.remove(user);
            }
        }
    }

    /// One notice per voter of `prediction_id`, with the votes as they are now.
    fn notices(&self, p: &Prediction, kind: NoticeKind, reason: Option<&str>) -> Vec<VoterNotice> {
        self.votes
            .get(&p.id)
            .map(|votes| {
                votes
                    .values()
                    .map(|v| VoterNotice {
                        user_id: v.user_id.clone(),
                        prediction_id: p.id.clone(),
                        question: p.question.clone(),
                        selected_option: v.selected_option.clone(),
                        is_correct: v.is_correct.unwrap_or(false),
                        kind,
                        reason: reason.map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn validate(record: &VerificationRecord) -> Result<()> {
    if record.prediction_id.is_empty() {
        return Err(Error::invalid("verification record without prediction_id"));
    }
    if let VerificationOutcome::Verified(v) = &record.outcome {
        if v.correct_option.trim().is_empty() {
            return Err(Error::invalid(format!(
                "prediction {}: empty correct_option",
                record.prediction_id
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl PredictionRepository for InMemoryPredictions {
    async fn insert_prediction(&self, prediction: &Prediction) -> Result<()> {
        if prediction.id.is_empty() {
            return Err(Error::invalid("prediction without id"));
        }
        let mut st = self.lock();
        if st.predictions.contains_key(&prediction.id) {
            return Err(Error::Conflict(format!(
                "prediction {} exists",
                prediction.id
            )));
        }
        if is_due_candidate(prediction) {
            st.due.insert(prediction);
        }
        st.predictions.insert(
            prediction.id.clone(),
            Entry {
                prediction: prediction.clone(),
                claimed_until: None,
            },
        );
        Ok(())
    }

    async fn insert_votes(&self, votes: &[Vote]) -> Result<()> {
        let mut st = self.lock();
        // Validate the whole batch first: all or nothing.
        let mut seen = BTreeSet::new();
        for v in votes {
            if !st.predictions.contains_key(&v.prediction_id) {
                return Err(Error::NotFound(format!("prediction {}", v.prediction_id)));
            }
            let dup_stored = st
                .votes
                .get(&v.prediction_id)
                .is_some_and(|m| m.contains_key(&v.user_id));
            if dup_stored || !seen.insert((v.prediction_id.as_str(), v.user_id.as_str())) {
                return Err(Error::Conflict(format!(
                    "user {} already voted on prediction {}",
                    v.user_id, v.prediction_id
                )));
            }
        }
        for v in votes {
            st.votes
                .entry(v.prediction_id.clone())
                .or_default()
                .insert(v.user_id.clone(), v.clone());
        }
        Ok(())
    }

    async fn get_prediction(&self, id: &str) -> Result<Option<Prediction>> {
        Ok(self
            .lock()
            .predictions
            .get(id)
            .map(|e| e.prediction.clone()))
    }

    async fn list_predictions(&self, query: &PredictionQuery) -> Result<Vec<Prediction>> {
        let st = self.lock();
        let mut hits: Vec<&Prediction> = st
            .predictions
            .values()
            .map(|e| &e.prediction)
            .filter(|p| query.status.is_none_or(|s| p.status == s))
            .filter(|p| {
                query
                    .symbol_code
                    .as_deref()
                    .is_none_or(|c| p.symbol_code == c)
            })
            .collect();
        hits.sort_by(|a, b| listing_order(a, b));
        Ok(hits
            .into_iter()
            .take(query.limit as usize)
            .cloned()
            .collect())
    }

    async fn vote_counts(&self, prediction_id: &str) -> Result<Vec<OptionVotes>> {
        let st = self.lock();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for v in st
            .votes
            .get(prediction_id)
            .into_iter()
            .flat_map(|m| m.values())
        {
            *counts.entry(v.selected_option.as_str()).or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|(option, votes)| OptionVotes {
                option: option.to_owned(),
                votes,
            })
            .collect())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim_for: Duration,
    ) -> Result<Vec<Prediction>> {
        let mut st = self.lock();
        let until = add(now, claim_for);
        let mut picked = Vec::new();
        for (vt, id) in st.due.all.iter() {
            if picked.len() >= limit as usize || *vt > now {
                break;
            }
            let free = st
                .predictions
                .get(id)
                .is_some_and(|e| e.claimed_until.is_none_or(|c| c <= now));
            if free {
                picked.push(id.clone());
            }
        }
        let mut out = Vec::with_capacity(picked.len());
        for id in picked {
            if let Some(e) = st.predictions.get_mut(&id) {
                e.claimed_until = Some(until);
                out.push(e.prediction.clone());
            }
        }
        Ok(out)
    }

    async fn release_claims(&self, ids: &[String]) -> Result<()> {
        let mut st = self.lock();
        for id in ids {
            if let Some(e) = st.predictions.get_mut(id) {
                e.claimed_until = None;
            }
        }
        Ok(())
    }

    async fn next_due(&self, limit: u32) -> Result<Vec<DueSymbol>> {
        Ok(self
            .lock()
            .due
            .earliest(usize::try_from(limit).unwrap_or(usize::MAX)))
    }

    async fn record_verifications(&self, records: &[VerificationRecord]) -> Result<RecordSummary> {
        for r in records {
            validate(r)?;
        }
        let mut st = self.lock();
        let mut summary = RecordSummary::default();
        for r in records {
            match st.apply(r) {
                None => summary.skipped.push(r.prediction_id.clone()),
                Some((true, marked)) => {
                    summary.verified.push(r.prediction_id.clone());
                    summary.votes_marked += marked;
                }
                Some((false, _)) => summary.needs_review.push(r.prediction_id.clone()),
            }
        }
        Ok(summary)
    }

    async fn votes_for(&self, prediction_id: &str) -> Result<Vec<Vote>> {
        let st = self.lock();
        let mut votes: Vec<Vote> = st
            .votes
            .get(prediction_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        votes.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.user_id.cmp(&b.user_id))
        });
        Ok(votes)
    }

    async fn user_stats(&self, user_ids: &[String]) -> Result<Vec<UserStats>> {
        let st = self.lock();
        let mut seen = BTreeSet::new();
        Ok(user_ids
            .iter()
            .filter(|u| seen.insert(u.as_str()))
            .filter_map(|u| st.stats.get(u).cloned())
            .collect())
    }

    async fn recent_verified(&self, limit: u32) -> Result<Vec<Prediction>> {
        let st = self.lock();
        let mut ended: Vec<&Prediction> = st
            .predictions
            .values()
            .map(|e| &e.prediction)
            .filter(|p| p.status == PredictionStatus::Ended)
            .collect();
        ended.sort_by(|a, b| {
            b.verified_at
                .cmp(&a.verified_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(ended.into_iter().take(limit as usize).cloned().collect())
    }

    async fn record_correction(&self, c: &Correction) -> Result<Revision> {
        let option = c.correct_option.trim();
        if option.is_empty() {
            return Err(Error::invalid(format!(
                "prediction {}: empty correct_option",
                c.prediction_id
            )));
        }
        let mut st = self.lock();
        let entry = st
            .predictions
            .get_mut(&c.prediction_id)
            .ok_or_else(|| Error::NotFound(format!("prediction {}", c.prediction_id)))?;
        let p = &mut entry.prediction;
        if p.status != PredictionStatus::Ended {
            return Err(Error::Conflict(format!(
                "prediction {} is {}; only ended predictions can be corrected",
                p.id,
                p.status.as_str()
            )));
        }
        let previous = p.correct_option.clone();
        let same_price = c
            .price
            .as_ref()
            .is_none_or(|m| p.price_at_verify == Some(m.price_at_verify));
        if previous.as_deref() == Some(option) && same_price {
            return Err(Error::Conflict(format!(
                "prediction {} already has correct_option {option}",
                p.id
            )));
        }
        p.correct_option = Some(option.to_owned());
        if let Some(m) = &c.price {
            p.price_at_verify = Some(m.price_at_verify);
            p.price_change_percent = m.price_change_percent;
            p.price_at_verify_ts = Some(m.price_at_verify_ts);
            p.price_source = Some(PriceSource::Manual);
            p.price_provider = None;
        }
        let p = p.clone();
        let mut users = BTreeSet::new();
        let mut marked = 0u64;
        if let Some(votes) = st.votes.get_mut(&p.id) {
            for v in votes.values_mut() {
                v.is_correct = Some(v.selected_option == option);
                users.insert(v.user_id.clone());
                marked += 1;
            }
        }
        let recomputed = st.recompute_users(&users, c.corrected_at);
        let event = PredictionCorrected {
            prediction_id: p.id.clone(),
            symbol_code: p.symbol_code.clone(),
            correct_option: option.to_owned(),
            price_at_verify: p.price_at_verify.unwrap_or_default(),
            price_change_percent: p.price_change_percent,
            price_source: p.price_source.unwrap_or(PriceSource::Manual),
            price_at_verify_ts: p.price_at_verify_ts.unwrap_or(c.corrected_at),
            previous_option: previous.clone().unwrap_or_default(),
        };
        let notices = st.notices(&p, NoticeKind::Corrected, None);
        st.push_outbox(OutboxPayload::PredictionCorrected(event), c.corrected_at);
        for n in notices {
            st.push_outbox(OutboxPayload::Notify(n), c.corrected_at);
        }
        Ok(Revision {
            previous_status: PredictionStatus::Ended,
            previous_option: previous,
            votes_marked: marked,
            users_recomputed: recomputed,
        })
    }

    async fn record_void(&self, v: &VoidRecord) -> Result<Revision> {
        let reason = v.reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid(format!(
                "prediction {}: a void needs a reason",
                v.prediction_id
            )));
        }
        let mut st = self.lock();
        let entry = st
            .predictions
            .get_mut(&v.prediction_id)
            .ok_or_else(|| Error::NotFound(format!("prediction {}", v.prediction_id)))?;
        let p = &mut entry.prediction;
        let previous_status = p.status;
        if previous_status == PredictionStatus::Void {
            return Err(Error::Conflict(format!(
                "prediction {} is already void",
                p.id
            )));
        }
        p.status = PredictionStatus::Void;
        p.review_reason = Some(reason.to_owned());
        entry.claimed_until = None;
        let p = p.clone();
        st.due.remove(&p);
        let mut users = BTreeSet::new();
        let mut marked = 0u64;
        if let Some(votes) = st.votes.get_mut(&p.id) {
            for vote in votes.values_mut() {
                vote.is_correct = None;
                users.insert(vote.user_id.clone());
                marked += 1;
            }
        }
        let recomputed = if previous_status == PredictionStatus::Ended {
            st.recompute_users(&users, v.voided_at)
        } else {
            0
        };
        let notices = st.notices(&p, NoticeKind::Voided, Some(reason));
        st.push_outbox(
            OutboxPayload::PredictionVoided(PredictionVoided {
                prediction_id: p.id.clone(),
                symbol_code: p.symbol_code.clone(),
                reason: reason.to_owned(),
            }),
            v.voided_at,
        );
        for n in notices {
            st.push_outbox(OutboxPayload::Notify(n), v.voided_at);
        }
        Ok(Revision {
            previous_status,
            previous_option: p.correct_option.clone(),
            votes_marked: marked,
            users_recomputed: recomputed,
        })
    }

    async fn recompute_stats(
        &self,
        mode: RecomputeMode,
        now: DateTime<Utc>,
    ) -> Result<Vec<StatsDiff>> {
        let mut st = self.lock();
        let mut results = st.verified_results(None);
        let users: BTreeSet<String> = results.keys().chain(st.stats.keys()).cloned().collect();
        let mut diffs = Vec::new();
        let mut lasts = Vec::new();
        for user in users {
            let (r, last) = results.remove(&user).unwrap_or_default();
            lasts.push((user.clone(), last));
            let recomputed = stats_from_results(user.clone(), r, now);
            let stored = st.stats.get(&user).cloned();
            let differs = match &stored {
                Some(s) => !s.same_numbers(&recomputed),
                None => recomputed.total_participations != 0,
            };
            if differs {
                diffs.push(StatsDiff {
                    user_id: user,
                    stored,
                    recomputed,
                });
            }
        }
        if mode == RecomputeMode::Fix {
            for d in &diffs {
                st.stats.insert(d.user_id.clone(), d.recomputed.clone());
            }
            for (user, last) in lasts {
                st.set_last_applied(&user, last);
            }
        }
        Ok(diffs)
    }
}

#[async_trait]
impl OutboxRepository for InMemoryPredictions {
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>> {
        let mut st = self.lock();
        let until = add(now, lease);
        let mut out = Vec::new();
        for e in st.outbox.values_mut() {
            if out.len() >= limit as usize {
                break;
            }
            let claimable = e.row.state == OutboxState::Pending
                && e.row.next_attempt_at <= now
                && e.leased_until.is_none_or(|l| l <= now);
            if claimable {
                e.leased_until = Some(until);
                out.push(OutboxMessage {
                    id: e.row.id,
                    payload: e.row.payload.clone(),
                    attempts: e.row.attempts,
                    last_error: e.row.last_error.clone(),
                });
            }
        }
        Ok(out)
    }

    async fn mark_delivered(&self, ids: &[i64]) -> Result<()> {
        let mut st = self.lock();
        let mut done = Vec::new();
        for id in ids {
            if let Some(e) = st.outbox.get_mut(id) {
                if e.row.state == OutboxState::Pending {
                    e.row.state = OutboxState::Delivered;
                    e.leased_until = None;
                    done.push(*id);
                }
            }
        }
        for id in done {
            self.finish_row(&mut st, id);
        }
        Ok(())
    }

    async fn reschedule(&self, id: i64, next_attempt_at: DateTime<Utc>, error: &str) -> Result<()> {
        let mut st = self.lock();
        let e = st
            .outbox
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("outbox row {id}")))?;
        if e.row.state == OutboxState::Pending {
            e.row.attempts = e.row.attempts.saturating_add(1);
            e.row.last_error = Some(error.to_owned());
            e.row.next_attempt_at = next_attempt_at;
            e.leased_until = None;
        }
        Ok(())
    }

    async fn mark_failed(&self, id: i64, error: &str) -> Result<()> {
        let mut st = self.lock();
        let e = st
            .outbox
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("outbox row {id}")))?;
        if e.row.state != OutboxState::Pending {
            return Ok(());
        }
        e.row.attempts = e.row.attempts.saturating_add(1);
        e.row.last_error = Some(error.to_owned());
        e.row.state = OutboxState::Failed;
        e.leased_until = None;
        self.finish_row(&mut st, id);
        Ok(())
    }

    async fn outbox_rows(&self) -> Result<Vec<OutboxRow>> {
        Ok(self.lock().outbox.values().map(|e| e.row.clone()).collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::conformance;
    use rust_decimal::Decimal;

    /// Statistics that do not match the votes (here: edited behind the store's back, as an
    /// import without votes would leave them) are listed by `Check`, untouched, and replaced by
    /// `Fix`.
    #[tokio::test]
    async fn recompute_stats_lists_and_fixes_differing_users() {
        let repo = InMemoryPredictions::new();
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let p = Prediction::new_active(
            "p",
            "XAUUSD",
            "q",
            Decimal::new(100, 0),
            t,
            VerifyRule::Manual,
            None,
            t,
        );
        repo.insert_prediction(&p).await.expect("insert");
        repo.insert_votes(&[Vote {
            prediction_id: "p".into(),
            user_id: "u".into(),
            selected_option: "A".into(),
            is_correct: None,
            created_at: t,
        }])
        .await
        .expect("vote");
        repo.record_verifications(&[VerificationRecord {
            prediction_id: "p".into(),
            outcome: VerificationOutcome::Verified(Verdict {
                correct_option: "A".into(),
                price_at_verify: Decimal::new(101, 0),
                price_change_percent: Some(Decimal::new(100, 2)),
                price_source: PriceSource::Manual,
                price_provider: None,
                price_at_verify_ts: t,
            }),
            verified_at: t,
            manual: true,
        }])
        .await
        .expect("verify");
        {
            let mut st = repo.lock();
            st.stats.insert("ghost".into(), {
                let mut g = UserStats::empty("ghost", t);
                g.total_participations = 7;
                g
            });
            if let Some(u) = st.stats.get_mut("u") {
                u.current_streak = 5;
            }
        }
        let check = repo
            .recompute_stats(RecomputeMode::Check, t)
            .await
            .expect("check");
        let users: Vec<&str> = check.iter().map(|d| d.user_id.as_str()).collect();
        assert_eq!(users, ["ghost", "u"]);
        assert!(check[0].without_votes());
        assert_eq!(
            repo.all_user_stats()[1].current_streak,
            5,
            "check writes nothing"
        );
        let fixed = repo
            .recompute_stats(RecomputeMode::Fix, t)
            .await
            .expect("fix");
        assert_eq!(fixed.len(), 2);
        let after: Vec<(String, i64, i64)> = repo
            .all_user_stats()
            .into_iter()
            .map(|s| (s.user_id, s.total_participations, s.current_streak))
            .collect();
        assert_eq!(after, [("ghost".to_owned(), 0, 0), ("u".to_owned(), 1, 1)]);
        assert!(repo
            .recompute_stats(RecomputeMode::Check, t)
            .await
            .expect("again")
            .is_empty());
    }

    #[tokio::test]
    async fn prediction_conformance() {
        let repo = InMemoryPredictions::new();
        conformance::predictions::run_all(&repo, &repo).await;
        // Twice on the same repository: the suite tolerates its own earlier rows.
        conformance::predictions::run_all(&repo, &repo).await;
    }

    #[tokio::test]
    async fn outbox_conformance() {
        let repo = InMemoryPredictions::new();
        conformance::outbox::run_all(&repo, &repo).await;
        conformance::predictions::run_all(&repo, &repo).await;
        conformance::outbox::run_all(&repo, &repo).await;
    }

    fn step() -> impl proptest::strategy::Strategy<Value = conformance::predictions::Step> {
        use conformance::predictions::Step;
        use proptest::prelude::*;
        prop_oneof![
            3 => any::<u8>().prop_map(|option| Step::Verify { option }),
            2 => (any::<u8>(), any::<u8>()).prop_map(|(which, option)| Step::VerifyAny { which, option }),
            2 => (any::<u8>(), any::<u8>(), proptest::option::of(0u8..3)).prop_map(
                |(prediction, option, price)| Step::Correct { prediction, option, price }
            ),
            1 => any::<u8>().prop_map(|prediction| Step::Void { prediction }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(500))]
        /// Random verifications, corrections and voids: after every step the stored statistics
        /// equal a plain recomputation from the votes.
        #[test]
        fn stats_always_equal_the_recomputation(
            users in 1usize..5,
            predictions in 1usize..7,
            votes in proptest::collection::vec((0u8..5, 0u8..7, 0u8..3), 0..30),
            steps in proptest::collection::vec(step(), 0..30),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let repo = InMemoryPredictions::new();
            rt.block_on(conformance::predictions::random_history(
                &repo, &repo, users, predictions, &votes, &steps,
            ));
        }
    }

    #[tokio::test]
    async fn finished_outbox_rows_are_bounded() {
        let repo = InMemoryPredictions::with_outbox_retention(2);
        let now = Utc::now();
        for i in 0..5 {
            let id = format!("p{i}");
            repo.insert_prediction(&conformance::predictions::auto_prediction(
                &id, "XAUUSD", now, now,
            ))
            .await
            .unwrap();
            repo.record_verifications(&[conformance::predictions::verified(
                &id, "A", "1", "0", now, now,
            )])
            .await
            .unwrap();
        }
        assert_eq!(repo.outbox_rows().await.unwrap().len(), 5);
        let ids: Vec<i64> = (1..=4).collect();
        repo.mark_delivered(&ids).await.unwrap();
        let rows = repo.outbox_rows().await.unwrap();
        // Two finished rows kept, the pending one never dropped.
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(repo.pending_outbox(), 1);
    }

    #[tokio::test]
    async fn record_is_all_or_nothing_on_invalid_input() {
        let repo = InMemoryPredictions::new();
        let now = Utc::now();
        repo.insert_prediction(&conformance::predictions::auto_prediction(
            "p", "XAUUSD", now, now,
        ))
        .await
        .unwrap();
        let good = conformance::predictions::verified("p", "A", "1", "0", now, now);
        let bad = conformance::predictions::verified("p", " ", "1", "0", now, now);
        assert!(matches!(
            repo.record_verifications(&[good, bad]).await,
            Err(Error::InvalidInput(_))
        ));
        let p = repo.get_prediction("p").await.unwrap().unwrap();
        assert_eq!(p.status, PredictionStatus::Active);
        assert!(repo.outbox_rows().await.unwrap().is_empty());
    }
}

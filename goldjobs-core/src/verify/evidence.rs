//! Why did option A win? The evidence shown with a verdict (`GET /predictions/{id}`,
//! `GET /predictions`, `GET /users/{id}/stats`).
//!
//! The evidence is computed from what was recorded — `price_at_create`, `price_at_verify` and
//! the conditions — with the very evaluation the verifier uses
//! ([`ConditionSet::evaluate`](crate::condition::ConditionSet::evaluate) over
//! [`Vars::new`](crate::condition::Vars::new)), so it can never tell a different story from the
//! verdict.

use crate::condition::{option_texts, ConditionSet, Vars};
use crate::model::*;
use crate::ports::PredictionRepository;
use crate::Result;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The most predictions one [`PredictionReader::list`] answers.
pub const MAX_LIST_LIMIT: u32 = 100;

/// A prediction as `GET /predictions` lists it: the verdict and where its price came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionSummary {
    /// Id.
    pub id: String,
    /// Symbol code.
    pub symbol_code: String,
    /// The question.
    pub question: String,
    /// `active`, `ended`, `needs_review` or `void`.
    pub status: PredictionStatus,
    /// `auto` or `manual`.
    pub verify_rule: VerifyRule,
    /// When it is (was) due.
    pub verify_time: DateTime<Utc>,
    /// Price when created.
    pub price_at_create: Decimal,
    /// The deciding price, once recorded.
    pub price_at_verify: Option<Decimal>,
    /// The instant of that price.
    pub price_at_verify_ts: Option<DateTime<Utc>>,
    /// `tick`, `provider_history` or `manual`.
    pub price_source: Option<PriceSource>,
    /// The market data provider of that price (`twelvedata`, `binance`, …), when known.
    pub price_provider: Option<String>,
    /// `price_at_verify − price_at_create`.
    pub price_change: Option<Decimal>,
    /// The rounded change in percent (guide: *The change and its rounding*).
    pub price_change_percent: Option<Decimal>,
    /// The winning option.
    pub correct_option: Option<String>,
    /// Why it needs review, or why it was voided.
    pub review_reason: Option<String>,
    /// When it was verified.
    pub verified_at: Option<DateTime<Utc>>,
}

impl From<&Prediction> for PredictionSummary {
    fn from(p: &Prediction) -> Self {
        PredictionSummary {
            id: p.id.clone(),
            symbol_code: p.symbol_code.clone(),
            question: p.question.clone(),
            status: p.status,
            verify_rule: p.verify_rule,
            verify_time: p.verify_time,
            price_at_create: p.price_at_create,
            price_at_verify: p.price_at_verify,
            price_at_verify_ts: p.price_at_verify_ts,
            price_source: p.price_source,
            price_provider: p.price_provider.clone(),
            price_change: p
                .price_at_verify
                .and_then(|v| v.checked_sub(p.price_at_create)),
            price_change_percent: p.price_change_percent,
            correct_option: p.correct_option.clone(),
            review_reason: p.review_reason.clone(),
            verified_at: p.verified_at,
        }
    }
}

/// One option of a prediction with its condition and what it came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionEvidence {
    /// The option, e.g. `A`.
    pub option: String,
    /// Its condition as written; `None` for manual predictions (and for a value that is not a
    /// condition at all, which sends the prediction to review).
    pub condition: Option<String>,
    /// The condition's value under the recorded prices; `None` while no price is recorded, or
    /// when the conditions cannot be evaluated (they do not parse, or `price_at_create <= 0`).
    pub result: Option<bool>,
    /// Votes for this option.
    pub votes: u64,
}

/// A prediction with the evidence of its verdict (`GET /predictions/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionEvidence {
    /// The prediction and its verdict.
    #[serde(flatten)]
    pub prediction: PredictionSummary,
    /// Every option in the conditions' key order (then options voted for that the conditions do
    /// not name), with its condition, result and votes.
    pub options: Vec<OptionEvidence>,
}

impl PredictionEvidence {
    /// The evidence of `p` given its votes per option.
    pub fn new(p: &Prediction, votes: &[OptionVotes]) -> Self {
        let votes_for = |option: &str| {
            votes
                .iter()
                .filter(|v| v.option == option)
                .map(|v| v.votes)
                .sum()
        };
        let mut options: Vec<OptionEvidence> = Vec::new();
        if let Some(json) = p.auto_verify_conditions.as_deref() {
            let texts = option_texts(json).unwrap_or_default();
            // The verifier's own evaluation, under the recorded prices.
            let results: Option<Vec<bool>> =
                match (ConditionSet::from_json(json), p.price_at_verify) {
                    (Ok(set), Some(verify)) => Vars::new(p.price_at_create, verify)
                        .map(|vars| set.evaluate(&vars).map(|(_, truth)| truth).collect()),
                    _ => None,
                };
            for (i, (option, condition)) in texts.into_iter().enumerate() {
                if options.iter().any(|o| o.option == option) {
                    continue; // a duplicate key: the prediction is in review for it
                }
                let result = results.as_ref().and_then(|r| r.get(i).copied());
                let votes = votes_for(&option);
                options.push(OptionEvidence {
                    option,
                    condition,
                    result,
                    votes,
                });
            }
        }
        for v in votes {
            if !options.iter().any(|o| o.option == v.option) {
                options.push(OptionEvidence {
                    option: v.option.clone(),
                    condition: None,
                    result: None,
                    votes: votes_for(&v.option),
                });
            }
        }
        PredictionEvidence {
            prediction: PredictionSummary::from(p),
            options,
        }
    }
}

/// The read side of predictions and statistics for the HTTP API and embedders.
#[derive(Clone)]
pub struct PredictionReader {
    predictions: Arc<dyn PredictionRepository>,
}

impl std::fmt::Debug for PredictionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionReader").finish_non_exhaustive()
    }
}

impl PredictionReader {
    /// A reader over this repository.
    pub fn new(predictions: Arc<dyn PredictionRepository>) -> Self {
        PredictionReader { predictions }
    }

    /// One prediction with its evidence; `None` if unknown.
    pub async fn get(&self, id: &str) -> Result<Option<PredictionEvidence>> {
        let Some(p) = self.predictions.get_prediction(id).await? else {
            return Ok(None);
        };
        let votes = self.predictions.vote_counts(id).await?;
        Ok(Some(PredictionEvidence::new(&p, &votes)))
    }

    /// Predictions matching `query` (its limit clamped to 1–[`MAX_LIST_LIMIT`]), most recently
    /// verified first.
    pub async fn list(&self, query: &PredictionQuery) -> Result<Vec<PredictionSummary>> {
        let query = query
            .clone()
            .with_limit(query.limit.clamp(1, MAX_LIST_LIMIT));
        Ok(self
            .predictions
            .list_predictions(&query)
            .await?
            .iter()
            .map(PredictionSummary::from)
            .collect())
    }

    /// One user's statistics; `None` if the user has none.
    pub async fn user_stats(&self, user_id: &str) -> Result<Option<UserStats>> {
        Ok(self
            .predictions
            .user_stats(&[user_id.to_owned()])
            .await?
            .into_iter()
            .next())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    const PLATFORM: &str = r#"{"A": {"condition": "price_change_percent >= 1.0"}, "B": {"condition": "price_change_percent > 0 AND price_change_percent < 1.0"}, "C": {"condition": "price_change_percent <= 0"}}"#;

    fn prediction(conditions: Option<&str>) -> Prediction {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        Prediction::new_active(
            "p1",
            "XAUUSD",
            "Gold up 1%?",
            d("2650.00"),
            t,
            VerifyRule::Auto,
            conditions.map(str::to_owned),
            t,
        )
    }

    fn votes(list: &[(&str, u64)]) -> Vec<OptionVotes> {
        list.iter()
            .map(|(o, n)| OptionVotes {
                option: (*o).to_owned(),
                votes: *n,
            })
            .collect()
    }

    #[test]
    fn evidence_evaluates_every_option_under_the_recorded_prices() {
        let mut p = prediction(Some(PLATFORM));
        p.status = PredictionStatus::Ended;
        p.price_at_verify = Some(d("2680.00"));
        p.price_change_percent = Some(d("1.13"));
        p.correct_option = Some("A".into());
        let e = PredictionEvidence::new(&p, &votes(&[("A", 12), ("C", 3), ("Z", 1)]));
        let got: Vec<(&str, Option<&str>, Option<bool>, u64)> = e
            .options
            .iter()
            .map(|o| (o.option.as_str(), o.condition.as_deref(), o.result, o.votes))
            .collect();
        assert_eq!(
            got,
            [
                ("A", Some("price_change_percent >= 1.0"), Some(true), 12),
                (
                    "B",
                    Some("price_change_percent > 0 AND price_change_percent < 1.0"),
                    Some(false),
                    0
                ),
                ("C", Some("price_change_percent <= 0"), Some(false), 3),
                ("Z", None, None, 1),
            ]
        );
        assert_eq!(e.prediction.price_change, Some(d("30.00")));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["price_at_verify"], "2680.00");
        assert_eq!(
            json["options"][0]["condition"],
            "price_change_percent >= 1.0"
        );
        assert_eq!(json["status"], "ended");
    }

    #[test]
    fn no_price_no_result_and_broken_sets_are_shown_as_written() {
        let p = prediction(Some(PLATFORM));
        let e = PredictionEvidence::new(&p, &[]);
        assert!(e.options.iter().all(|o| o.result.is_none()));
        assert_eq!(e.options.len(), 3);

        let mut broken = prediction(Some(
            r#"{"A": {"condition": "price_change_percent >> 1"}, "B": {"label": "x"}}"#,
        ));
        broken.status = PredictionStatus::NeedsReview;
        broken.price_at_verify = Some(d("2680.00"));
        broken.review_reason = Some("auto_verify_conditions: …".into());
        let e = PredictionEvidence::new(&broken, &[]);
        let got: Vec<(&str, Option<&str>, Option<bool>)> = e
            .options
            .iter()
            .map(|o| (o.option.as_str(), o.condition.as_deref(), o.result))
            .collect();
        assert_eq!(
            got,
            [
                ("A", Some("price_change_percent >> 1"), None),
                ("B", None, None)
            ]
        );
        assert_eq!(
            e.prediction.review_reason.as_deref(),
            Some("auto_verify_conditions: …")
        );
    }

    #[test]
    fn manual_predictions_list_the_voted_options() {
        let mut p = prediction(None);
        p.verify_rule = VerifyRule::Manual;
        let e = PredictionEvidence::new(&p, &votes(&[("no", 2), ("yes", 5)]));
        let got: Vec<(&str, u64)> = e
            .options
            .iter()
            .map(|o| (o.option.as_str(), o.votes))
            .collect();
        assert_eq!(got, [("no", 2), ("yes", 5)]);
    }
}

//! Every standard job, one module each: prices, news, verification, the outbox dispatcher and
//! retention. Each has a `NAME` constant, is built with `new(&ports, services…)` and takes its
//! settings with `with_config(…)`. Beside them, the two background loops that are not scheduled
//! jobs: the live price [`PriceStreamer`] and the verifier's [`VerifyWaker`].

mod news;
mod outbox;
mod price;
mod retention;
mod stream;
mod verify;
mod wake;

pub use news::{NewsFetcherJob, NewsJobConfig, STORY_CANDIDATES};
pub use outbox::{OutboxConfig, OutboxDispatcherJob};
pub use price::{PriceFetcherConfig, PriceFetcherJob, SeqFloor, StreamCoverage};
pub use retention::{RetentionConfig, RetentionJob};
pub use stream::{PriceStreamConfig, PriceStreamer};
pub use verify::{PredictionVerifierJob, VerifierConfig};
pub use wake::{VerifyWakeConfig, VerifyWaker};

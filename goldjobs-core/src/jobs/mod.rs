//! The periodic jobs that are not verification: prices, news and retention.

mod news;
pub mod price;
mod retention;

pub use news::{NewsFetcherJob, NewsJobConfig};
pub use price::{PriceFetcherConfig, PriceFetcherJob, SeqFloor, PRICE_FETCHER_JOB};
pub use retention::{RetentionConfig, RetentionJob, RETENTION_JOB};

//! The periodic jobs that are not verification: prices and news.

pub mod price;
pub use price::{PriceFetcherConfig, PriceFetcherJob, PRICE_FETCHER_JOB};
mod news;
pub use news::{NewsFetcherJob, NewsJobConfig};

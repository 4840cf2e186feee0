//! The periodic jobs that are not verification: prices and news.

mod news;
pub use news::{NewsFetcherJob, NewsJobConfig};
pub mod price;
pub use price::{PriceFetcherConfig, PriceFetcherJob, PRICE_FETCHER_JOB};

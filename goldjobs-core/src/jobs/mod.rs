//! The periodic jobs that are not verification: prices and news.

mod news;
pub mod price;

pub use news::{NewsFetcherJob, NewsJobConfig};
pub use price::{PriceFetcherConfig, PriceFetcherJob, SeqFloor, PRICE_FETCHER_JOB};

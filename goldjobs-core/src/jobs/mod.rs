//! The periodic jobs that are not verification: prices and news.

mod news;
pub use news::{NewsFetcherJob, NewsJobConfig};

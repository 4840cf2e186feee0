//! News sources: RSS/Atom/JSON Feed over HTTP (feature `rss`).
//!
//! - [`FeedConfig`]: one feed (category, publisher, URL), the `GOLDJOBS_NEWS_FEEDS` syntax and
//!   the built-in list;
//! - [`parse_feed`]: feed bytes → articles (pure, feed-rs);
//! - [`FeedSource`]: the [`NewsSource`](goldjobs_core::NewsSource) over HTTP.

mod config;
mod feed;
mod parse;

pub use config::FeedConfig;
pub use feed::{display_url, feed_info, FeedSource, FeedSourceConfig};
pub use parse::{parse_feed, ParsedFeed};

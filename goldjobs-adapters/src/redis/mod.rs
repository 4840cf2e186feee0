//! Redis adapters: quote cache, news-list cache, cross-instance events.
pub mod events;
pub mod news_cache;

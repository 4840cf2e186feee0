//! The periodic jobs that are not verification: prices and news.

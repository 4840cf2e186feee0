//! News domain rules: canonical URLs, related symbols, deduplication.

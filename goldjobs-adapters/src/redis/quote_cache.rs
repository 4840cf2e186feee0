//! The quote cache in Redis: one hash `quote:{SYMBOL}` per symbol (guide: *Redis keys*).

use super::unavailable;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use goldjobs_core::{Quote, QuoteCache, Result};
use redis::aio::ConnectionManager;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// [`QuoteCache`] on Redis.
///
/// Keys are `{prefix}quote:{SYMBOL}` (the prefix is empty in production, so keys are exactly
/// `quote:XAUUSD`; tests use a random one). Each key is a hash with the fields `symbol_code`,
/// `price`, `change`, `change_percent` (decimal strings, exactly as the provider gave them) and
/// `timestamp` (RFC 3339, UTC) and expires after the TTL (`PEXPIRE`, millisecond precision).
///
/// `put_quotes` writes every symbol in one `MULTI … EXEC` pipeline (one round trip; readers never
/// see a hash without its TTL); `get_quotes` reads with one pipeline of `HGETALL`. A malformed
/// hash is skipped with a warning. Redis errors are temporary [`goldjobs_core::Error::Unavailable`];
/// a command failing because the connection was dropped is retried once on the reconnected
/// connection (the commands are idempotent).
#[derive(Clone)]
pub struct RedisQuoteCache {
    conn: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisQuoteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQuoteCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisQuoteCache {
    /// A cache on this connection, keys prefixed with `key_prefix` (use `""` in production).
    pub fn new(conn: ConnectionManager, key_prefix: impl Into<String>) -> Self {
        RedisQuoteCache {
            conn,
            prefix: key_prefix.into(),
        }
    }

    /// The key of a symbol: `{prefix}quote:{SYMBOL}`.
    pub fn key(&self, code: &str) -> String {
        format!("{}quote:{}", self.prefix, code)
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        what: &str,
        pipe: &redis::Pipeline,
    ) -> Result<T> {
        let mut conn = self.conn.clone();
        match pipe.query_async::<T>(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                tracing::debug!(error = %e, "redis connection dropped; retrying once");
                pipe.query_async::<T>(&mut conn)
                    .await
                    .map_err(|e| unavailable(what, e))
            }
            Err(e) => Err(unavailable(what, e)),
        }
    }
}

fn parse_hash(code: &str, mut hash: HashMap<String, String>) -> std::result::Result<Quote, String> {
    let mut take = |field: &str| {
        hash.remove(field)
            .ok_or_else(|| format!("field {field} missing"))
    };
    let symbol_code = take("symbol_code")?;
    if symbol_code != code {
        return Err(format!(
            "symbol_code {symbol_code:?} does not match the key"
        ));
    }
    let dec = |field: &str, v: String| {
        Decimal::from_str(&v).map_err(|_| format!("field {field}: {v:?} is not a decimal"))
    };
    let price = dec("price", take("price")?)?;
    let change = dec("change", take("change")?)?;
    let change_percent = dec("change_percent", take("change_percent")?)?;
    let ts = take("timestamp")?;
    let timestamp = DateTime::parse_from_rfc3339(&ts)
        .map_err(|_| format!("field timestamp: {ts:?} is not RFC 3339"))?
        .with_timezone(&Utc);
    Ok(Quote {
        symbol_code,
        price,
        change,
        change_percent,
        timestamp,
        source: None,
    })
}

#[async_trait]
impl QuoteCache for RedisQuoteCache {
    async fn put_quotes(&self, quotes: &[Quote], ttl: Duration) -> Result<()> {
        if quotes.is_empty() {
            return Ok(());
        }
        // PEXPIRE 0 would delete the key at once; the shortest TTL we set is 1 ms.
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for q in quotes {
            let key = self.key(&q.symbol_code);
            pipe.cmd("HSET")
                .arg(&key)
                .arg("symbol_code")
                .arg(&q.symbol_code)
                .arg("price")
                .arg(q.price.to_string())
                .arg("change")
                .arg(q.change.to_string())
                .arg("change_percent")
                .arg(q.change_percent.to_string())
                .arg("timestamp")
                .arg(q.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                .ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
        }
        self.query::<()>("quote cache write", &pipe).await
    }

    async fn get_quotes(&self, codes: &[String]) -> Result<Vec<Quote>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for code in codes {
            pipe.cmd("HGETALL").arg(self.key(code));
        }
        let hashes: Vec<HashMap<String, String>> = self.query("quote cache read", &pipe).await?;
        let mut quotes = Vec::with_capacity(codes.len());
        for (code, hash) in codes.iter().zip(hashes) {
            if hash.is_empty() {
                continue; // missing or expired
            }
            match parse_hash(code, hash) {
                Ok(q) => quotes.push(q),
                Err(problem) => {
                    tracing::warn!(key = %self.key(code), %problem, "skipping malformed cached quote");
                }
            }
        }
        Ok(quotes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hash(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_exactly_and_rejects_bad_hashes() {
        let good = [
            ("symbol_code", "XAUUSD"),
            ("price", "2658.50000"),
            ("change", "28.30"),
            ("change_percent", "-1.07596"),
            ("timestamp", "2026-11-27T14:00:00Z"),
        ];
        let q = parse_hash("XAUUSD", hash(&good)).unwrap();
        assert_eq!(q.price.to_string(), "2658.50000");
        assert_eq!(q.change_percent.to_string(), "-1.07596");
        assert!(parse_hash("XAGUSD", hash(&good)).is_err());
        let mut bad = good;
        bad[1] = ("price", "lots");
        assert!(parse_hash("XAUUSD", hash(&bad)).is_err());
        let mut bad = good;
        bad[4] = ("timestamp", "yesterday");
        assert!(parse_hash("XAUUSD", hash(&bad)).is_err());
        assert!(parse_hash("XAUUSD", hash(&good[..3])).is_err());
    }
}

//! [`RedisNewsCache`]: the news-list cache in Redis (`news:*` keys, guide: *Redis keys*).
//!
//! Keys (after the instance's prefix, empty in production):
//! - `news:version` — a counter; [`invalidate_lists`](NewsCache::invalidate_lists) is one
//!   `INCR` of it, whatever the number of cached lists (never `KEYS` or `SCAN`);
//! - `news:v{version}:{key}` — a cached list under the version current when it was written,
//!   with the TTL it was written with. Lists of older versions are never read again and expire
//!   on their own.
//!
//! A read and a write are each one round trip: a small Lua script reads the version and the list
//! key derived from it atomically (`EVAL`, so it needs no script cache and survives a Redis
//! restart). The scripts touch a key derived inside the script, which standalone and replicated
//! Redis allow (not Redis Cluster).

use async_trait::async_trait;
use bytes::Bytes;
use goldjobs_core::{BoxError, Error, NewsCache, Result};
use redis::aio::ConnectionManager;
use std::time::Duration;

/// Backend name in errors.
const BACKEND: &str = "redis";

/// `KEYS[1]` = version key, `ARGV[1]` = list key prefix (`…news:v`), `ARGV[2]` = caller's key.
const GET_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1]) or '0'
return redis.call('GET', ARGV[1] .. v .. ':' .. ARGV[2])
";

/// As [`GET_SCRIPT`], plus `ARGV[3]` = value, `ARGV[4]` = TTL in milliseconds.
const PUT_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1]) or '0'
redis.call('SET', ARGV[1] .. v .. ':' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
return v
";

/// `get_list_at`: the generation and the list of it, in one round trip (`[version, value|nil]`).
const GET_AT_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1]) or '0'
return {v, redis.call('GET', ARGV[1] .. v .. ':' .. ARGV[2])}
";

/// `put_list_at`: store only if the generation is still the one the caller read in.
const PUT_AT_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1]) or '0'
if v ~= ARGV[5] then
  return 0
end
redis.call('SET', ARGV[1] .. v .. ':' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
return 1
";

/// The news-list cache in Redis; cheap to clone (the connection manager is shared).
#[derive(Clone)]
pub struct RedisNewsCache {
    conn: ConnectionManager,
    version_key: String,
    list_prefix: String,
}

impl std::fmt::Debug for RedisNewsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNewsCache")
            .field("version_key", &self.version_key)
            .finish_non_exhaustive()
    }
}

impl RedisNewsCache {
    /// A cache on `conn` whose keys start with `prefix` followed by `news:` (`prefix` is empty in
    /// production; tests give each cache a random one, e.g. `test-1a2b:`).
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        RedisNewsCache {
            conn,
            version_key: format!("{prefix}news:version"),
            list_prefix: format!("{prefix}news:v"),
        }
    }

    /// The key holding the version counter (for inspection and tests).
    pub fn version_key(&self) -> &str {
        &self.version_key
    }
}

fn redis_error(what: &str, e: redis::RedisError) -> Error {
    Error::unavailable(
        BACKEND,
        format!("news cache {what}: {e}"),
        Some(Box::new(e) as BoxError),
    )
}

impl RedisNewsCache {
    /// `EVAL script 1 version_key list_prefix key`: every script's common arguments.
    fn script(&self, script: &str, key: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script)
            .arg(1)
            .arg(&self.version_key)
            .arg(&self.list_prefix)
            .arg(key);
        cmd
    }
}

#[async_trait]
impl NewsCache for RedisNewsCache {
    async fn get_list(&self, key: &str) -> Result<Option<Bytes>> {
        let mut conn = self.conn.clone();
        let value: Option<Vec<u8>> = self
            .script(GET_SCRIPT, key)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("read", e))?;
        Ok(value.map(Bytes::from))
    }

    async fn put_list(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if millis == 0 {
            // nothing would live: nothing to store (Redis rejects `PX 0`)
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let _version: redis::Value = self
            .script(PUT_SCRIPT, key)
            .arg(value.as_ref())
            .arg(millis)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("write", e))?;
        Ok(())
    }

    async fn get_list_at(&self, key: &str) -> Result<(Option<Bytes>, u64)> {
        let mut conn = self.conn.clone();
        let (version, value): (String, Option<Vec<u8>>) = self
            .script(GET_AT_SCRIPT, key)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("read", e))?;
        let version = version.parse::<u64>().map_err(|_| {
            Error::backend(
                BACKEND,
                format!("news cache version {version:?} is not a number"),
                None,
            )
        })?;
        Ok((value.map(Bytes::from), version))
    }

    async fn put_list_at(
        &self,
        key: &str,
        generation: u64,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if millis == 0 {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let _stored: i64 = self
            .script(PUT_AT_SCRIPT, key)
            .arg(value.as_ref())
            .arg(millis)
            .arg(generation.to_string())
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("write", e))?;
        Ok(())
    }

    async fn invalidate_lists(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let _version: i64 = redis::cmd("INCR")
            .arg(&self.version_key)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("invalidation", e))?;
        Ok(())
    }
}

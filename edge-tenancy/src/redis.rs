//! A GCRA rate limiter in Redis, shared by every server node (feature `redis`).
//!
//! One Lua script reads the key's TAT, applies GCRA on Redis's own clock (`TIME`, so node
//! clocks do not matter) and writes the new TAT with an expiry, atomically.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use edge_core::Error;
use redis::aio::ConnectionManager;

use crate::BoxFuture;
use crate::ratelimit::{Quota, RateDecision, RateKey, RateLimiter};

const GCRA_SCRIPT: &str = r"
local emission = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + emission
local ahead = new_tat - now
if ahead > limit then
  return {0, ahead - limit, 0}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ahead / 1000) + 1)
return {1, math.floor((limit - ahead) / emission), ahead}
";

/// A [`RateLimiter`] backed by Redis. Cheap to clone; reconnects on its own.
#[derive(Clone)]
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    script: Arc<redis::Script>,
    prefix: String,
}

impl RedisRateLimiter {
    /// Connects to Redis at `url` (e.g. `redis://127.0.0.1:6379`). Keys are named
    /// `<prefix>:<org>:<bucket>`.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(Error::internal)?;
        let connection = ConnectionManager::new(client)
            .await
            .map_err(Error::internal)?;
        Ok(Self::from_connection(connection, prefix))
    }

    /// Uses an existing connection manager.
    pub fn from_connection(connection: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            connection,
            script: Arc::new(redis::Script::new(GCRA_SCRIPT)),
            prefix: prefix.into(),
        }
    }

    /// The Redis key holding `key`'s state.
    pub fn redis_key(&self, key: &RateKey) -> String {
        format!("{}:{}:{}", self.prefix, key.org, key.bucket)
    }
}

impl RateLimiter for RedisRateLimiter {
    fn check<'a>(
        &'a self,
        key: &'a RateKey,
        quota: Quota,
    ) -> BoxFuture<'a, Result<RateDecision, Error>> {
        Box::pin(async move {
            let emission = u64::try_from(quota.emission_interval().as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let limit = emission.saturating_mul(u64::from(quota.burst()));
            let mut connection = self.connection.clone();
            let (allowed, first, second): (i64, i64, i64) = self
                .script
                .key(self.redis_key(key))
                .arg(emission)
                .arg(limit)
                .invoke_async(&mut connection)
                .await
                .map_err(Error::internal)?;
            let micros = |value: i64| Duration::from_micros(u64::try_from(value).unwrap_or(0));
            Ok(if allowed == 1 {
                RateDecision::Allowed {
                    remaining: u32::try_from(first).unwrap_or(0),
                    reset_after: micros(second),
                }
            } else {
                RateDecision::Limited {
                    retry_after: micros(first),
                }
            })
        })
    }
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

//! [`InMemoryDeviceTokens`]: a [`DeviceTokenRepository`] in memory.

use super::{read, write};
use crate::{DeviceToken, DeviceTokenRepository, Result};
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

#[derive(Debug, Default)]
struct Inner {
    /// token → registration (a token is unique, like the table's `UNIQUE`).
    by_token: HashMap<String, DeviceToken>,
    /// user → their tokens, ordered.
    by_user: HashMap<String, BTreeSet<String>>,
}

impl Inner {
    fn unlink(&mut self, user_id: &str, token: &str) {
        if let Some(set) = self.by_user.get_mut(user_id) {
            set.remove(token);
            if set.is_empty() {
                self.by_user.remove(user_id);
            }
        }
    }
}

/// Device tokens in memory; a token belongs to one user at a time.
///
/// Used by tests and the embedded default.
///
/// Registering a token again replaces its user and platform (the device moved to another
/// account). [`tokens_for_users`](DeviceTokenRepository::tokens_for_users) answers in the order
/// of the users asked, each user's tokens ordered by token, each user once.
#[derive(Debug, Default)]
pub struct InMemoryDeviceTokens {
    inner: RwLock<Inner>,
}

impl InMemoryDeviceTokens {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many tokens are registered.
    pub fn len(&self) -> usize {
        read(&self.inner).by_token.len()
    }

    /// Whether no token is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl DeviceTokenRepository for InMemoryDeviceTokens {
    async fn register_token(&self, token: &DeviceToken) -> Result<()> {
        let mut inner = write(&self.inner);
        if let Some(old) = inner.by_token.insert(token.token.clone(), token.clone()) {
            inner.unlink(&old.user_id, &old.token);
        }
        inner
            .by_user
            .entry(token.user_id.clone())
            .or_default()
            .insert(token.token.clone());
        Ok(())
    }

    async fn tokens_for_users(&self, user_ids: &[String]) -> Result<Vec<DeviceToken>> {
        let inner = read(&self.inner);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for user in user_ids {
            if !seen.insert(user.as_str()) {
                continue;
            }
            if let Some(tokens) = inner.by_user.get(user) {
                out.extend(tokens.iter().filter_map(|t| inner.by_token.get(t)).cloned());
            }
        }
        Ok(out)
    }

    async fn delete_tokens(&self, tokens: &[String]) -> Result<u64> {
        let mut inner = write(&self.inner);
        let mut deleted = 0u64;
        for t in tokens {
            if let Some(old) = inner.by_token.remove(t) {
                inner.unlink(&old.user_id, &old.token);
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

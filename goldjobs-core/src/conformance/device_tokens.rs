//! Conformance suite of [`DeviceTokenRepository`].

use super::{ok, unique};
use crate::{DeviceToken, DeviceTokenRepository};

/// Run every behaviour of this suite.
pub async fn run_all(repo: &dyn DeviceTokenRepository) {
    register_and_list_by_user(repo).await;
    reregister_moves_token(repo).await;
    delete_counts_deleted(repo).await;
}

fn token(user: &str, token: &str, platform: &str) -> DeviceToken {
    DeviceToken {
        user_id: user.to_owned(),
        token: token.to_owned(),
        platform: platform.to_owned(),
    }
}

/// Sorted by user then token, since the port fixes no order.
async fn tokens_of(repo: &dyn DeviceTokenRepository, users: &[&String]) -> Vec<DeviceToken> {
    let users: Vec<String> = users.iter().map(|u| (*u).clone()).collect();
    let mut got = ok(repo.tokens_for_users(&users).await, "tokens_for_users");
    got.sort_by(|a, b| (&a.user_id, &a.token).cmp(&(&b.user_id, &b.token)));
    got
}

/// Registered tokens are listed for their users only; registering the same token twice keeps
/// one; users without tokens and an empty list of users give nothing.
pub async fn register_and_list_by_user(repo: &dyn DeviceTokenRepository) {
    let u1 = unique("user");
    let u2 = unique("user");
    let u3 = unique("user");
    let mut t1 = [unique("tok"), unique("tok")];
    t1.sort();
    let t2 = unique("tok");
    let a = token(&u1, &t1[0], "android");
    let b = token(&u1, &t1[1], "ios");
    let c = token(&u2, &t2, "web");
    for t in [&a, &b, &c, &a] {
        ok(repo.register_token(t).await, "register_token");
    }
    assert_eq!(tokens_of(repo, &[&u1]).await, vec![a.clone(), b.clone()]);
    let mut both = vec![a, b, c];
    both.sort_by(|x, y| (&x.user_id, &x.token).cmp(&(&y.user_id, &y.token)));
    assert_eq!(tokens_of(repo, &[&u1, &u2, &u3]).await, both);
    assert!(tokens_of(repo, &[&u3]).await.is_empty(), "no tokens");
    assert!(tokens_of(repo, &[]).await.is_empty(), "no users asked");
}

/// A token registered again for another user (or platform) moves there.
pub async fn reregister_moves_token(repo: &dyn DeviceTokenRepository) {
    let u1 = unique("user");
    let u2 = unique("user");
    let t = unique("tok");
    ok(
        repo.register_token(&token(&u1, &t, "android")).await,
        "register_token",
    );
    let moved = token(&u2, &t, "ios");
    ok(repo.register_token(&moved).await, "register_token (move)");
    assert!(
        tokens_of(repo, &[&u1]).await.is_empty(),
        "the token left its old user"
    );
    assert_eq!(tokens_of(repo, &[&u2]).await, vec![moved]);
}

/// Deleting tokens reports how many existed; unknown and repeated tokens do not count.
pub async fn delete_counts_deleted(repo: &dyn DeviceTokenRepository) {
    let u = unique("user");
    let t1 = unique("tok");
    let t2 = unique("tok");
    let keep = token(&u, &t2, "web");
    ok(
        repo.register_token(&token(&u, &t1, "android")).await,
        "register_token",
    );
    ok(repo.register_token(&keep).await, "register_token");
    let gone = ok(
        repo.delete_tokens(&[t1.clone(), unique("tok"), t1.clone()])
            .await,
        "delete_tokens",
    );
    assert_eq!(gone, 1, "one existing token deleted");
    assert_eq!(tokens_of(repo, &[&u]).await, vec![keep]);
    assert_eq!(ok(repo.delete_tokens(&[]).await, "delete_tokens(&[])"), 0);
    assert_eq!(ok(repo.delete_tokens(&[t1]).await, "delete_tokens"), 0);
}

#[cfg(test)]
mod tests {
    use crate::memory::InMemoryDeviceTokens;

    #[tokio::test]
    async fn in_memory_device_tokens_conform() {
        super::run_all(&InMemoryDeviceTokens::new()).await;
    }
}

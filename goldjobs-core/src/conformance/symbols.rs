//! Conformance suite of [`SymbolRepository`].

use super::{ok, unique_code};
use crate::{Symbol, SymbolRepository};

/// Run every behaviour of this suite.
pub async fn run_all(repo: &dyn SymbolRepository) {
    upsert_then_list_active(repo).await;
    upsert_updates_by_code(repo).await;
    upsert_nothing_is_fine(repo).await;
}

fn ours(all: Vec<Symbol>, codes: &[&str]) -> Vec<Symbol> {
    all.into_iter()
        .filter(|s| codes.contains(&s.code.as_str()))
        .collect()
}

/// Upserted symbols are listed when active, with every field, ordered by code; inactive ones
/// are not listed.
pub async fn upsert_then_list_active(repo: &dyn SymbolRepository) {
    let mut codes = [unique_code(), unique_code(), unique_code()];
    codes.sort();
    let [a, b, c] = codes.clone();
    let sa = Symbol::new(&a, "Conformance A", "CA/USD");
    let mut sb = Symbol::new(&b, "Conformance B", "CB/USD");
    sb.active = false;
    let sc = Symbol::new(&c, "Conformance C", "CC/USD");
    // Inserted out of order.
    ok(
        repo.upsert_symbols(&[sc.clone(), sb, sa.clone()]).await,
        "upsert_symbols",
    );
    let active = ok(repo.active_symbols().await, "active_symbols");
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    assert_eq!(
        ours(active, &refs),
        vec![sa, sc],
        "active_symbols lists the active upserted symbols, ordered by code, not the inactive one"
    );
}

/// Upserting an existing code replaces its fields, including `active`.
pub async fn upsert_updates_by_code(repo: &dyn SymbolRepository) {
    let code = unique_code();
    let first = Symbol::new(&code, "Before", "BEFORE");
    ok(repo.upsert_symbols(&[first]).await, "upsert_symbols");
    let mut off = Symbol::new(&code, "After", "AFTER");
    off.active = false;
    ok(repo.upsert_symbols(&[off]).await, "upsert_symbols (update)");
    let active = ok(repo.active_symbols().await, "active_symbols");
    assert!(
        ours(active, &[&code]).is_empty(),
        "a symbol upserted with active = false is not listed any more"
    );
    let on = Symbol::new(&code, "Again", "AGAIN");
    ok(
        repo.upsert_symbols(std::slice::from_ref(&on)).await,
        "upsert_symbols (reactivate)",
    );
    let active = ok(repo.active_symbols().await, "active_symbols");
    assert_eq!(
        ours(active, &[&code]),
        vec![on],
        "the upserted fields replace the old ones"
    );
}

/// Upserting an empty slice succeeds.
pub async fn upsert_nothing_is_fine(repo: &dyn SymbolRepository) {
    ok(repo.upsert_symbols(&[]).await, "upsert_symbols(&[])");
}

#[cfg(test)]
mod tests {
    use crate::memory::InMemorySymbols;

    #[tokio::test]
    async fn in_memory_symbols_conform() {
        super::run_all(&InMemorySymbols::new()).await;
        let seeded = InMemorySymbols::with_defaults();
        super::run_all(&seeded).await;
        let codes: Vec<String> = crate::SymbolRepository::active_symbols(&seeded)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.code)
            .filter(|c| !c.starts_with('T') || c.len() != 10)
            .collect();
        assert_eq!(
            codes,
            ["BTCUSD", "EURUSD", "GBPUSD", "USDJPY", "XAGUSD", "XAUUSD"]
        );
    }
}

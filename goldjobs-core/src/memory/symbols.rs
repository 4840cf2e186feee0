//! [`InMemorySymbols`]: a [`SymbolRepository`] in memory.

use super::{read, write};
use crate::{Result, Symbol, SymbolRepository};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Symbols in memory, keyed (and therefore ordered) by code.
///
/// Used by tests and the embedded default; [`InMemorySymbols::with_defaults`] holds the six
/// symbols the database migrations seed.
#[derive(Debug, Default)]
pub struct InMemorySymbols {
    symbols: RwLock<BTreeMap<String, Symbol>>,
}

impl InMemorySymbols {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    /// A repository holding [`Symbol::defaults`] (XAUUSD, XAGUSD, EURUSD, GBPUSD, USDJPY, BTCUSD).
    pub fn with_defaults() -> Self {
        Self::with_symbols(Symbol::defaults())
    }

    /// A repository holding these symbols (a later one with the same code wins).
    pub fn with_symbols(symbols: impl IntoIterator<Item = Symbol>) -> Self {
        let map = symbols.into_iter().map(|s| (s.code.clone(), s)).collect();
        Self {
            symbols: RwLock::new(map),
        }
    }

    /// Every symbol, active or not, ordered by code.
    pub fn all(&self) -> Vec<Symbol> {
        read(&self.symbols).values().cloned().collect()
    }
}

#[async_trait]
impl SymbolRepository for InMemorySymbols {
    async fn active_symbols(&self) -> Result<Vec<Symbol>> {
        Ok(read(&self.symbols)
            .values()
            .filter(|s| s.active)
            .cloned()
            .collect())
    }

    async fn upsert_symbols(&self, symbols: &[Symbol]) -> Result<()> {
        let mut map = write(&self.symbols);
        for s in symbols {
            map.insert(s.code.clone(), s.clone());
        }
        Ok(())
    }
}

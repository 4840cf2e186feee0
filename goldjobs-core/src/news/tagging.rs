//! Which of our symbols an article talks about.
//!
//! The text is split into words at every character that is not a letter or a digit (so
//! `EUR/USD`, `gold-backed` and `Gold's` give `EUR` `USD`, `gold` `backed`, `Gold` `s`). A symbol
//! is related when a whole word matches one of its rules:
//!
//! | symbol | names (any letter case) | codes (upper case only) |
//! |---|---|---|
//! | `XAUUSD` | `gold` | `XAU`, `XAUUSD` |
//! | `XAGUSD` | `silver` | `XAG`, `XAGUSD` |
//! | `EURUSD` | `euro`, `euros` | `EUR`, `EURUSD` |
//! | `GBPUSD` | `pound`, `sterling` | `GBP`, `GBPUSD` |
//! | `USDJPY` | `yen` | `JPY`, `USDJPY` |
//! | `BTCUSD` | `bitcoin`, `bitcoins` | `BTC`, `BTCUSD` |
//!
//! Consequences, decided on purpose:
//! - only whole words match: `golden`, `Goldman`, `goldfields`, `silverware`, `Eurozone`,
//!   `Europe`, `eurobond`, `pounds` (weight, mostly) and `yenta` do not;
//! - codes must be written in upper case, as financial text writes them (`EUR/USD`, `XAU`); names
//!   match in any case (`GOLD`, `Gold`, `gold`);
//! - a currency code stands for our one symbol in that currency: `EUR/JPY` tags `EURUSD` and
//!   `USDJPY`; `USD` alone tags nothing;
//! - the result is sorted and has no duplicates.

/// A matching rule: a word and whether it must match exactly (codes) or in any case (names).
struct Rule {
    word: &'static str,
    exact_case: bool,
    symbol: &'static str,
}

const fn name(word: &'static str, symbol: &'static str) -> Rule {
    Rule {
        word,
        exact_case: false,
        symbol,
    }
}

const fn code(word: &'static str, symbol: &'static str) -> Rule {
    Rule {
        word,
        exact_case: true,
        symbol,
    }
}

const RULES: &[Rule] = &[
    name("gold", "XAUUSD"),
    code("XAU", "XAUUSD"),
    code("XAUUSD", "XAUUSD"),
    name("silver", "XAGUSD"),
    code("XAG", "XAGUSD"),
    code("XAGUSD", "XAGUSD"),
    name("euro", "EURUSD"),
    name("euros", "EURUSD"),
    code("EUR", "EURUSD"),
    code("EURUSD", "EURUSD"),
    name("pound", "GBPUSD"),
    name("sterling", "GBPUSD"),
    code("GBP", "GBPUSD"),
    code("GBPUSD", "GBPUSD"),
    name("yen", "USDJPY"),
    code("JPY", "USDJPY"),
    code("USDJPY", "USDJPY"),
    name("bitcoin", "BTCUSD"),
    name("bitcoins", "BTCUSD"),
    code("BTC", "BTCUSD"),
    code("BTCUSD", "BTCUSD"),
];

/// Symbols (codes like `XAUUSD`) related to `text`, sorted, without duplicates. See the
/// module's source for the rules.
pub fn related_symbols(text: &str) -> Vec<String> {
    let mut found: Vec<&'static str> = Vec::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() <= 8)
    {
        for rule in RULES {
            let hit = if rule.exact_case {
                word == rule.word
            } else {
                word.eq_ignore_ascii_case(rule.word)
            };
            if hit && !found.contains(&rule.symbol) {
                found.push(rule.symbol);
            }
        }
    }
    found.sort_unstable();
    found.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &[&str])] = &[
            ("Gold rallies as dollar slips", &["XAUUSD"]),
            ("GOLD and SILVER climb", &["XAGUSD", "XAUUSD"]),
            ("gold-backed ETFs see inflows", &["XAUUSD"]),
            ("Gold's best week since March", &["XAUUSD"]),
            ("XAU/USD: bulls eye 2,700", &["XAUUSD"]),
            ("XAUUSD technical outlook", &["XAUUSD"]),
            ("XAG/USD holds above $31", &["XAGUSD"]),
            // word boundaries
            ("Goldman Sachs raises targets", &[]),
            ("A golden opportunity", &[]),
            ("Goldfields output rises", &[]),
            ("Silverware makers", &[]),
            ("Eurozone inflation cools", &[]),
            ("Europe's banks", &[]),
            ("Yenta the matchmaker", &[]),
            ("Bitcoiners rejoice", &[]),
            // euro: names any case, codes upper case only
            ("The euro weakens", &["EURUSD"]),
            ("EURO slides", &["EURUSD"]),
            ("Euros in circulation", &["EURUSD"]),
            ("EUR/USD drops below 1.05", &["EURUSD"]),
            ("EURUSD forecast", &["EURUSD"]),
            ("EUR weakness", &["EURUSD"]),
            ("eur/usd lower case code", &[]),
            (
                "EUR/JPY and EUR/GBP crosses",
                &["EURUSD", "GBPUSD", "USDJPY"],
            ),
            ("USD strength", &[]),
            // pound
            ("Pound sterling gains", &["GBPUSD"]),
            ("Sterling slips after BoE", &["GBPUSD"]),
            ("GBP/USD rises", &["GBPUSD"]),
            // yen
            ("Yen weakens past 150", &["USDJPY"]),
            ("USD/JPY at 150", &["USDJPY"]),
            ("USDJPY breaks out", &["USDJPY"]),
            // bitcoin
            ("Bitcoin tops $100k", &["BTCUSD"]),
            ("BTC dominance rises", &["BTCUSD"]),
            ("btc lower case code", &[]),
            ("BTCUSD and bitcoin and BTC", &["BTCUSD"]),
            // several, sorted, deduplicated
            (
                "Gold, silver, the yen and bitcoin: gold again; EUR/USD and GBP",
                &["BTCUSD", "EURUSD", "GBPUSD", "USDJPY", "XAGUSD", "XAUUSD"],
            ),
            // punctuation and other scripts
            ("(Gold)", &["XAUUSD"]),
            ("金价 gold 上涨", &["XAUUSD"]),
            ("", &[]),
        ];
        for (text, want) in cases {
            let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(related_symbols(text), want, "{text:?}");
        }
    }
}

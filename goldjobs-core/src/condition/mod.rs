//! The safe condition language of `auto_verify_conditions` (guide: *The condition object*; *The
//! condition language*).
//!
//! A prediction with `verify_rule = 'auto'` carries a JSON object mapping option names to
//! conditions. The platform writes each option as an object with a `condition` member (other
//! members are ignored):
//!
//! ```json
//! {"A": {"condition": "price_change_percent >= 1.0"},
//!  "B": {"condition": "price_change_percent > 0 AND price_change_percent < 1.0"},
//!  "C": {"condition": "price_change_percent >= -0.5 AND price_change_percent <= 0"},
//!  "D": {"condition": "price_change_percent < -0.5"}}
//! ```
//!
//! A plain condition string per option (`{"A": "price_change_percent >= 1.0"}`) is accepted
//! as well, and the two shapes may be mixed.
//!
//! The options are tried in the object's key order and the first true condition wins
//! ([`ConditionSet::choose`]). Conditions are parsed once into a small AST ([`Condition`]) and
//! evaluated many times over [`Vars`], all in [`rust_decimal::Decimal`]: there is no `eval`, no
//! scripting engine and no floating point anywhere.
//!
//! ```
//! use goldjobs_core::condition::{validate, Condition, ConditionSet, Vars};
//! use rust_decimal::Decimal;
//!
//! let set = ConditionSet::from_json(
//!     r#"{"up": {"condition": "price_change_percent >= 1.0"},
//!         "flat": {"condition": "NOT (price_change_percent >= 1.0 OR price_change_percent <= -1.0)"},
//!         "down": {"condition": "price_change_percent <= -1.0"}}"#,
//! )?;
//! // 2650.00 → 2680.00 is +1.13 % (rounded to 2 places, half to even).
//! let vars = Vars::new(Decimal::new(265_000, 2), Decimal::new(268_000, 2)).expect("price > 0");
//! assert_eq!(vars.price_change_percent.to_string(), "1.13");
//! assert_eq!(set.choose(&vars), Some("up"));
//!
//! let c = Condition::parse("price_change_percent > 0 and not price_change < 5")?;
//! assert_eq!(c.to_string(), "price_change_percent > 0 AND NOT price_change < 5");
//! assert!(c.eval(&vars)); // +1.13 % and a change of 30.00
//!
//! let report = validate(
//!     r#"{"up": {"condition": "price_change_percent > 0"}, "down": "price_change_percent < 0"}"#,
//! );
//! assert_eq!(report.to_string(), "gap at price_change_percent = 0.00: no option is true");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Grammar
//!
//! ```text
//! condition  := or
//! or         := and ( OR and )*
//! and        := not ( AND not )*
//! not        := NOT not | primary
//! primary    := "(" or ")" | comparison
//! comparison := operand op operand          -- exactly one operator: `1 < x < 2` is an error
//! operand    := number | variable
//! op         := ">" | ">=" | "<" | "<=" | "=" | "==" | "!="
//! number     := [+-]? digit+ ( "." digit+ )?
//! variable   := price_change_percent | price_at_create | price_at_verify | price_change
//! ```
//!
//! Decisions the guide's rules leave open:
//!
//! * `AND`, `OR`, `NOT` are case-insensitive (`and`, `Or`, `nOt`); variable names are
//!   case-sensitive and lower case, an unknown name is an error that names it.
//! * `NOT` binds tightest, then `AND`, then `OR`; `NOT x > 1` means `NOT (x > 1)`.
//! * Numbers: an optional sign written directly before the digits (`-0.5`, `+2.25`, not
//!   `- 0.5`), digits, an optional fraction with at least one digit. No exponent (`1e3`), no
//!   leading or trailing dot (`.5`, `1.`), no digit separators (`1_000`, `1,000`). A number must
//!   fit a `Decimal` exactly (at most 28 fractional digits and about 28 significant digits),
//!   otherwise it is an error — never silently rounded.
//! * Either side of a comparison may be a number or a variable: `1.0 <= price_change_percent`,
//!   `price_at_verify > price_at_create` and even the constant `1 = 1` (a catch-all "otherwise"
//!   option) are accepted.
//! * Whitespace (ASCII space, tab, CR, LF, form feed) between tokens is ignored; any other
//!   character outside the grammar is an error.
//! * Limits: at most [`MAX_CONDITION_LEN`] bytes and at most [`MAX_DEPTH`] levels of nesting,
//!   where every `(` and every `NOT` opens one level. The parser's recursion is bounded by these
//!   limits, so hostile input cannot overflow the stack.
//! * Errors carry the byte offset into the condition string ([`ConditionError::position`]).
//!
//! [`Condition`]'s `Display` prints a canonical form (upper-case keywords, single spaces, `=`
//! for both `=` and `==`, the fewest parentheses) that parses back to the same AST.

mod ast;
mod parse;
mod set;
mod validate;
mod vars;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use ast::{CmpOp, Condition, Expr, ExprError, Operand, Var};
pub use parse::{ConditionError, MAX_CONDITION_LEN, MAX_DEPTH};
pub use set::{option_texts, ConditionSet, ConditionSetError, MAX_OPTIONS};
pub use validate::{validate, Problem, ValidationReport};
pub use vars::Vars;

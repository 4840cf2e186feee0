//! Lexer and recursive-descent parser of the condition language.

use rust_decimal::Decimal;

use super::ast::{CmpOp, Expr, Operand, Var};

/// The longest condition accepted, in bytes (guide: *The condition language*: 1 KiB).
pub const MAX_CONDITION_LEN: usize = 1024;

/// The deepest nesting accepted; every `(` and every `NOT` opens one level.
pub const MAX_DEPTH: usize = 32;

/// Longest piece of input quoted in an error message.
const MAX_QUOTE: usize = 40;

/// Why a condition does not parse. Every variant knows its byte position in the input
/// ([`ConditionError::position`]) and prints as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionError {
    /// The condition is empty or only whitespace.
    #[error("empty condition")]
    Empty,
    /// The condition is longer than [`MAX_CONDITION_LEN`] bytes.
    #[error("condition too long: {len} bytes, at most {MAX_CONDITION_LEN} allowed")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// A character that cannot start any token.
    #[error("unexpected character {ch:?} at {pos}")]
    UnexpectedChar {
        /// Byte position.
        pos: usize,
        /// The character.
        ch: char,
    },
    /// A malformed number, or one that does not fit a `Decimal` exactly.
    #[error("invalid number `{text}` at {pos}: {reason}")]
    InvalidNumber {
        /// Byte position of the number's first character.
        pos: usize,
        /// The number as written (shortened when long).
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A name that is neither a variable nor a keyword.
    #[error(
        "unknown variable `{name}` at {pos} (known: price_change_percent, price_at_create, \
         price_at_verify, price_change)"
    )]
    UnknownVariable {
        /// Byte position.
        pos: usize,
        /// The name as written (shortened when long).
        name: String,
    },
    /// A token that does not fit the grammar at this place, or a missing one.
    #[error("expected {expected} at {pos}, found {found}")]
    Expected {
        /// Byte position of the offending token (the input length at its end).
        pos: usize,
        /// What the grammar allows here.
        expected: &'static str,
        /// What is there: a quoted token or `end of input`.
        found: String,
    },
    /// A second comparison operator right after a comparison (`1 < x < 2`).
    #[error("comparisons do not chain: unexpected `{op}` at {pos} (combine comparisons with AND)")]
    ChainedComparison {
        /// Byte position of the second operator.
        pos: usize,
        /// The second operator.
        op: &'static str,
    },
    /// More than [`MAX_DEPTH`] nested `(` / `NOT`.
    #[error("nesting deeper than {MAX_DEPTH} at {pos}")]
    TooDeep {
        /// Byte position of the `(` or `NOT` that opens level `MAX_DEPTH + 1`.
        pos: usize,
    },
}

impl ConditionError {
    /// The byte position in the condition where the problem is (0 for an empty condition,
    /// [`MAX_CONDITION_LEN`] for one that is too long).
    pub fn position(&self) -> usize {
        match self {
            ConditionError::Empty => 0,
            ConditionError::TooLong { .. } => MAX_CONDITION_LEN,
            ConditionError::UnexpectedChar { pos, .. }
            | ConditionError::InvalidNumber { pos, .. }
            | ConditionError::UnknownVariable { pos, .. }
            | ConditionError::Expected { pos, .. }
            | ConditionError::ChainedComparison { pos, .. }
            | ConditionError::TooDeep { pos } => *pos,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Num(Decimal),
    Ident,
    LParen,
    RParen,
    Op(CmpOp),
    Eof,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    tok: Tok,
    pos: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    Not,
}

fn keyword(text: &str) -> Option<Kw> {
    if text.eq_ignore_ascii_case("and") {
        Some(Kw::And)
    } else if text.eq_ignore_ascii_case("or") {
        Some(Kw::Or)
    } else if text.eq_ignore_ascii_case("not") {
        Some(Kw::Not)
    } else {
        None
    }
}

/// `text` shortened to at most [`MAX_QUOTE`] bytes (on a char boundary), marked with `…`.
fn shorten(text: &str) -> String {
    if text.len() <= MAX_QUOTE {
        return text.to_owned();
    }
    let mut end = MAX_QUOTE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn lex(src: &str) -> Result<Vec<Token>, ConditionError> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        let tok = match b {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'<' | b'>' | b'=' | b'!' => {
                let eq_follows = bytes.get(i + 1) == Some(&b'=');
                let (op, len) = match (b, eq_follows) {
                    (b'<', true) => (CmpOp::Le, 2),
                    (b'<', false) => (CmpOp::Lt, 1),
                    (b'>', true) => (CmpOp::Ge, 2),
                    (b'>', false) => (CmpOp::Gt, 1),
                    (b'=', true) => (CmpOp::Eq, 2),
                    (b'=', false) => (CmpOp::Eq, 1),
                    (_, true) => (CmpOp::Ne, 2),
                    (_, false) => {
                        return Err(ConditionError::Expected {
                            pos: i + 1,
                            expected: "`=` after `!`",
                            found: describe_at(src, i + 1),
                        })
                    }
                };
                i += len;
                Tok::Op(op)
            }
            b'+' | b'-' | b'.' | b'0'..=b'9' => {
                let (num, end) = lex_number(src, i)?;
                i = end;
                Tok::Num(num)
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                Tok::Ident
            }
            _ => {
                // `i` is on a char boundary: everything before it was ASCII tokens.
                let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                return Err(ConditionError::UnexpectedChar { pos: i, ch });
            }
        };
        toks.push(Token {
            tok,
            pos: start,
            end: i,
        });
    }
    toks.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
        end: src.len(),
    });
    Ok(toks)
}

/// What is at byte `pos` of `src`, for an error message.
fn describe_at(src: &str, pos: usize) -> String {
    match src.get(pos..).and_then(|s| s.chars().next()) {
        None => "end of input".to_owned(),
        Some(ch) => format!("{ch:?}"),
    }
}

/// Lexes `[+-]? digit+ ("." digit+)?` starting at `start`; returns the value and the end.
fn lex_number(src: &str, start: usize) -> Result<(Decimal, usize), ConditionError> {
    let bytes = src.as_bytes();
    let mut i = start;
    if matches!(bytes[i], b'+' | b'-') {
        i += 1;
    }
    let body_start = i;
    // Take the whole run of digits and dots, so that `1.2.3` or `1.` are reported as one bad
    // number. A letter may follow directly (`1.0AND x < 2`), except an exponent.
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    let exponent = i > body_start
        && matches!(bytes.get(i), Some(b'e' | b'E'))
        && match bytes.get(i + 1) {
            Some(b'+' | b'-') => bytes.get(i + 2).is_some_and(u8::is_ascii_digit),
            next => next.is_some_and(u8::is_ascii_digit),
        };
    if exponent {
        i += 2;
        while i < bytes.len() && is_word_byte(bytes[i]) {
            i += 1;
        }
    }
    let text = &src[start..i];
    let body = &src[body_start..i];
    let bad = |reason: &'static str| ConditionError::InvalidNumber {
        pos: start,
        text: shorten(text),
        reason,
    };
    if exponent {
        return Err(bad("exponents are not supported; write the digits out"));
    }
    if body.is_empty() {
        return Err(bad("a sign must be directly followed by digits"));
    }
    let (int, frac) = match body.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (body, None),
    };
    if int.is_empty() {
        return Err(bad("a digit is needed before the decimal point"));
    }
    if frac.is_some_and(|f| f.contains('.')) {
        return Err(bad("more than one decimal point"));
    }
    if frac == Some("") {
        return Err(bad("a digit is needed after the decimal point"));
    }
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    match Decimal::from_str_exact(unsigned) {
        Ok(d) => Ok((d, i)),
        Err(_) => Err(bad(
            "does not fit a decimal exactly (at most 28 fractional digits and about 28 \
             significant digits)",
        )),
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    next: usize,
    depth: usize,
}

/// Parses a condition into its AST.
pub(super) fn parse(src: &str) -> Result<Expr, ConditionError> {
    if src.len() > MAX_CONDITION_LEN {
        return Err(ConditionError::TooLong { len: src.len() });
    }
    if src.trim_ascii().is_empty() {
        return Err(ConditionError::Empty);
    }
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        next: 0,
        depth: 0,
    };
    let expr = p.or()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        return Err(p.expected(t, "AND, OR or end of input"));
    }
    Ok(expr)
}

impl Parser<'_> {
    fn peek(&self) -> Token {
        // The token list always ends with `Eof` and `bump` never moves past it.
        self.toks[self.next.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if t.tok != Tok::Eof {
            self.next += 1;
        }
        t
    }

    fn text(&self, t: Token) -> &str {
        &self.src[t.pos..t.end]
    }

    fn keyword(&self, t: Token) -> Option<Kw> {
        match t.tok {
            Tok::Ident => keyword(self.text(t)),
            _ => None,
        }
    }

    fn at(&self, kw: Kw) -> bool {
        self.keyword(self.peek()) == Some(kw)
    }

    fn expected(&self, t: Token, expected: &'static str) -> ConditionError {
        let found = match t.tok {
            Tok::Eof => "end of input".to_owned(),
            _ => format!("`{}`", shorten(self.text(t))),
        };
        ConditionError::Expected {
            pos: t.pos,
            expected,
            found,
        }
    }

    fn enter(&mut self, at: Token) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ConditionError::TooDeep { pos: at.pos });
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ConditionError> {
        let first = self.and()?;
        if !self.at(Kw::Or) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.at(Kw::Or) {
            self.bump();
            items.push(self.and()?);
        }
        Ok(Expr::Or(items))
    }

    fn and(&mut self) -> Result<Expr, ConditionError> {
        let first = self.not()?;
        if !self.at(Kw::And) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.at(Kw::And) {
            self.bump();
            items.push(self.not()?);
        }
        Ok(Expr::And(items))
    }

    fn not(&mut self) -> Result<Expr, ConditionError> {
        if self.at(Kw::Not) {
            let t = self.bump();
            self.enter(t)?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ConditionError> {
        let t = self.peek();
        if t.tok == Tok::LParen {
            self.bump();
            self.enter(t)?;
            let inner = self.or()?;
            let close = self.peek();
            if close.tok != Tok::RParen {
                return Err(self.expected(close, "AND, OR or `)`"));
            }
            self.bump();
            self.depth -= 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ConditionError> {
        let lhs = self.operand("a number, a variable, NOT or `(`")?;
        let t = self.peek();
        let Tok::Op(op) = t.tok else {
            return Err(self.expected(t, "a comparison operator (> >= < <= = == !=)"));
        };
        self.bump();
        let rhs = self.operand("a number or variable")?;
        let t = self.peek();
        if let Tok::Op(op) = t.tok {
            return Err(ConditionError::ChainedComparison {
                pos: t.pos,
                op: if self.text(t) == "==" {
                    "=="
                } else {
                    op.symbol()
                },
            });
        }
        Ok(Expr::Cmp { lhs, op, rhs })
    }

    fn operand(&mut self, expected: &'static str) -> Result<Operand, ConditionError> {
        let t = self.peek();
        let operand = match t.tok {
            Tok::Num(n) => Operand::Number(n),
            Tok::Ident if self.keyword(t).is_none() => {
                let name = self.text(t);
                match Var::from_name(name) {
                    Some(v) => Operand::Var(v),
                    None => {
                        return Err(ConditionError::UnknownVariable {
                            pos: t.pos,
                            name: shorten(name),
                        })
                    }
                }
            }
            _ => return Err(self.expected(t, expected)),
        };
        self.bump();
        Ok(operand)
    }
}

//! The AST of a condition, its evaluation and its canonical printing.

use std::fmt;

use rust_decimal::Decimal;

use super::parse::{self, ConditionError};
use super::vars::Vars;

/// A variable a condition can read (guide: *The condition language*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Var {
    /// `price_change_percent`: the change in percent, rounded to 2 places half to even.
    PriceChangePercent,
    /// `price_at_create`: the symbol's price when the prediction was created.
    PriceAtCreate,
    /// `price_at_verify`: the symbol's price at verification time.
    PriceAtVerify,
    /// `price_change`: `price_at_verify − price_at_create`.
    PriceChange,
}

impl Var {
    /// Every variable, in the order of the guide's *The condition language*.
    pub const ALL: [Var; 4] = [
        Var::PriceChangePercent,
        Var::PriceAtCreate,
        Var::PriceAtVerify,
        Var::PriceChange,
    ];

    /// The variable's name in the condition language.
    pub const fn name(self) -> &'static str {
        match self {
            Var::PriceChangePercent => "price_change_percent",
            Var::PriceAtCreate => "price_at_create",
            Var::PriceAtVerify => "price_at_verify",
            Var::PriceChange => "price_change",
        }
    }

    /// The variable with this exact (lower-case) name.
    pub fn from_name(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.name() == name)
    }

    const fn bit(self) -> u8 {
        match self {
            Var::PriceChangePercent => 1,
            Var::PriceAtCreate => 2,
            Var::PriceAtVerify => 4,
            Var::PriceChange => 8,
        }
    }

    #[inline]
    fn value(self, vars: &Vars) -> Decimal {
        match self {
            Var::PriceChangePercent => vars.price_change_percent,
            Var::PriceAtCreate => vars.price_at_create,
            Var::PriceAtVerify => vars.price_at_verify,
            Var::PriceChange => vars.price_change,
        }
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// A variable, read from [`Vars`].
    Var(Var),
    /// A decimal literal.
    Number(Decimal),
}

impl Operand {
    #[inline]
    fn value(&self, vars: &Vars) -> Decimal {
        match self {
            Operand::Var(v) => v.value(vars),
            Operand::Number(n) => *n,
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Var(v) => f.write_str(v.name()),
            Operand::Number(n) => write!(f, "{n}"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=` or `==`
    Eq,
    /// `!=`
    Ne,
}

impl CmpOp {
    /// The operator's canonical spelling (`=` for equality).
    pub const fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
        }
    }

    /// Applies the operator to two decimals (compared by value: `1.0 = 1`).
    #[inline]
    pub fn apply(self, lhs: Decimal, rhs: Decimal) -> bool {
        match self {
            CmpOp::Lt => lhs < rhs,
            CmpOp::Le => lhs <= rhs,
            CmpOp::Gt => lhs > rhs,
            CmpOp::Ge => lhs >= rhs,
            CmpOp::Eq => lhs == rhs,
            CmpOp::Ne => lhs != rhs,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A node of the condition AST.
///
/// `And` and `Or` are n-ary: `a AND b AND c` is one `And` with three children, while
/// `(a AND b) AND c` keeps its parentheses as a nested `And`. The parser only builds `And`/`Or`
/// nodes with at least two children; [`Condition::from_expr`] checks that invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `lhs op rhs`
    Cmp {
        /// Left operand.
        lhs: Operand,
        /// Operator.
        op: CmpOp,
        /// Right operand.
        rhs: Operand,
    },
    /// `NOT e`
    Not(Box<Expr>),
    /// `e1 AND e2 AND …` (at least two children)
    And(Vec<Expr>),
    /// `e1 OR e2 OR …` (at least two children)
    Or(Vec<Expr>),
}

impl Expr {
    /// Evaluates the expression.
    pub fn eval(&self, vars: &Vars) -> bool {
        match self {
            Expr::Cmp { lhs, op, rhs } => op.apply(lhs.value(vars), rhs.value(vars)),
            Expr::Not(e) => !e.eval(vars),
            Expr::And(es) => es.iter().all(|e| e.eval(vars)),
            Expr::Or(es) => es.iter().any(|e| e.eval(vars)),
        }
    }

    /// Calls `f` on every comparison of the expression, left to right.
    pub fn for_each_comparison<F: FnMut(&Operand, CmpOp, &Operand)>(&self, f: &mut F) {
        match self {
            Expr::Cmp { lhs, op, rhs } => f(lhs, *op, rhs),
            Expr::Not(e) => e.for_each_comparison(f),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.for_each_comparison(f)),
        }
    }

    /// Precedence for printing: higher binds tighter.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(_) => 1,
            Expr::And(_) => 2,
            Expr::Not(_) => 3,
            Expr::Cmp { .. } => 4,
        }
    }

    /// Checks that the canonical form nests no deeper than the parser accepts (each `NOT` and
    /// each needed pair of parentheses is one level; `depth` is the level of `self`) and that
    /// `And`/`Or` nodes have at least two children.
    fn check(&self, depth: usize) -> Result<(), ExprError> {
        // Stop at the first level too deep, so that checking a hostile AST recurses no deeper
        // than the parser would.
        if depth > parse::MAX_DEPTH {
            return Err(ExprError::TooDeep { depth });
        }
        match self {
            Expr::Cmp { .. } => Ok(()),
            Expr::Not(e) => {
                let levels = if e.precedence() < 3 { 2 } else { 1 };
                e.check(depth + levels)
            }
            Expr::And(es) | Expr::Or(es) => {
                if es.len() < 2 {
                    return Err(ExprError::TooFewChildren);
                }
                let me = self.precedence();
                es.iter().try_for_each(|e| {
                    // A child of the same or lower precedence is printed in parentheses.
                    let levels = usize::from(e.precedence() <= me);
                    e.check(depth + levels)
                })
            }
        }
    }

    fn write_child(&self, f: &mut fmt::Formatter<'_>, parens: bool) -> fmt::Result {
        if parens {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Cmp { lhs, op, rhs } => write!(f, "{lhs} {op} {rhs}"),
            Expr::Not(e) => {
                f.write_str("NOT ")?;
                e.write_child(f, e.precedence() < 3)
            }
            Expr::And(es) | Expr::Or(es) => {
                let (me, sep) = match self {
                    Expr::And(_) => (2, " AND "),
                    _ => (1, " OR "),
                };
                for (i, e) in es.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    e.write_child(f, e.precedence() <= me)?;
                }
                Ok(())
            }
        }
    }
}

/// Why [`Condition::from_expr`] refuses an AST: its canonical form would not parse back to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// An `And` or `Or` node with fewer than two children.
    #[error("AND/OR node with fewer than two children")]
    TooFewChildren,
    /// The canonical form nests deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("nesting depth {depth} is more than {max}", max = parse::MAX_DEPTH)]
    TooDeep {
        /// The first depth found beyond the limit.
        depth: usize,
    },
    /// The canonical form is longer than [`MAX_CONDITION_LEN`](super::MAX_CONDITION_LEN).
    #[error("canonical form is {len} bytes, more than {max}", max = parse::MAX_CONDITION_LEN)]
    TooLong {
        /// The canonical form's length in bytes.
        len: usize,
    },
}

/// A parsed condition: compile once with [`Condition::parse`], evaluate many times with
/// [`Condition::eval`].
///
/// `Display` prints the canonical form, which parses back to an equal `Condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    expr: Expr,
    uses: u8,
}

impl Condition {
    /// Parses a condition (grammar and limits in the [module docs](super)).
    pub fn parse(input: &str) -> Result<Condition, ConditionError> {
        parse::parse(input).map(Condition::new)
    }

    /// Builds a condition from an AST, checking that it respects the parser's limits (nesting
    /// depth and length of its canonical form, `And`/`Or` with at least two children) so that
    /// its `Display` parses back to it.
    pub fn from_expr(expr: Expr) -> Result<Condition, ExprError> {
        expr.check(0)?;
        let len = expr.to_string().len();
        if len > parse::MAX_CONDITION_LEN {
            return Err(ExprError::TooLong { len });
        }
        Ok(Condition::new(expr))
    }

    fn new(expr: Expr) -> Condition {
        let mut uses = 0u8;
        expr.for_each_comparison(&mut |l, _, r| {
            for o in [l, r] {
                if let Operand::Var(v) = o {
                    uses |= v.bit();
                }
            }
        });
        Condition { expr, uses }
    }

    /// Evaluates the condition.
    #[inline]
    pub fn eval(&self, vars: &Vars) -> bool {
        self.expr.eval(vars)
    }

    /// The AST.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether the condition reads `var`.
    pub fn uses(&self, var: Var) -> bool {
        self.uses & var.bit() != 0
    }

    /// The variables the condition reads, in [`Var::ALL`] order.
    pub fn variables(&self) -> impl Iterator<Item = Var> + '_ {
        Var::ALL.into_iter().filter(|v| self.uses(*v))
    }
}

impl std::str::FromStr for Condition {
    type Err = ConditionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Condition::parse(s)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

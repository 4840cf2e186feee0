//! `auto_verify_conditions`: named options with a condition each, in key order.

use std::collections::HashSet;
use std::fmt;

/// The most options an `auto_verify_conditions` object may have.
pub const MAX_OPTIONS: usize = 64;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::ast::Condition;
use super::parse::ConditionError;
use super::vars::Vars;

/// Why an `auto_verify_conditions` JSON object is not a usable [`ConditionSet`]. Prints as one
/// line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionSetError {
    /// The text is not JSON.
    #[error("conditions are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is not an object.
    #[error(
        "conditions must be a JSON object of option → {{\"condition\": \"…\"}} (or → condition \
         string), found {found}"
    )]
    NotAnObject {
        /// The JSON type found (`an array`, `a string`, …).
        found: &'static str,
    },
    /// The object has no options.
    #[error("conditions object has no options")]
    Empty,
    /// The object has more than [`MAX_OPTIONS`] options.
    #[error("conditions object has {found} options, at most {MAX_OPTIONS} are allowed")]
    TooManyOptions {
        /// How many there are.
        found: usize,
    },
    /// An option's value is neither an object with a `"condition"` string (the platform's
    /// shape) nor a plain condition string.
    #[error(
        "option {option:?}: expected {{\"condition\": \"…\"}} or a condition string, found {found}"
    )]
    NotAString {
        /// The option name.
        option: String,
        /// What was found instead (`a number`, `an object without a "condition" key`, …).
        found: &'static str,
    },
    /// The same option name appears twice (JSON allows it; the key order would be ambiguous).
    #[error("option {option:?} appears more than once")]
    DuplicateOption {
        /// The option name.
        option: String,
    },
    /// An option name is empty or only whitespace (it could never be voted for or shown).
    #[error("option {option:?}: option names must not be blank")]
    BlankOption {
        /// The option name.
        option: String,
    },
    /// An option's condition does not parse.
    #[error("option {option:?}: {error}")]
    Condition {
        /// The option name.
        option: String,
        /// The parse error, with its byte position in the condition.
        #[source]
        error: ConditionError,
    },
}

/// The options of an `auto_verify_conditions` object, in the JSON object's key order
/// (guide: *The condition object*), each with its parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionSet {
    options: Vec<(String, Condition)>,
}

impl ConditionSet {
    /// Parses an `auto_verify_conditions` JSON object, keeping the key order. Each option's
    /// value is either the platform's object `{"condition": "price_change_percent >= 1.0"}`
    /// (other keys of that object, such as a label, are ignored) or a plain condition string;
    /// both shapes may be mixed. Rejects anything that is not an object, an empty object, values
    /// of neither shape, duplicate keys, conditions that do not parse (the error names the option
    /// and the byte position in the condition string) and blank option names. The first problem found is returned; [`validate`](super::validate) lists all.
    pub fn from_json(json: &str) -> Result<ConditionSet, ConditionSetError> {
        let entries = raw_entries(json)?;
        let mut options = Vec::with_capacity(entries.len());
        let mut seen = HashSet::with_capacity(entries.len());
        for (option, value) in entries {
            let text = match value {
                RawValue::Str(text) => text,
                RawValue::Other(found) => {
                    return Err(ConditionSetError::NotAString { option, found })
                }
            };
            if option.trim().is_empty() {
                return Err(ConditionSetError::BlankOption { option });
            }
            if !seen.insert(option.clone()) {
                return Err(ConditionSetError::DuplicateOption { option });
            }
            match Condition::parse(&text) {
                Ok(condition) => options.push((option, condition)),
                Err(error) => return Err(ConditionSetError::Condition { option, error }),
            }
        }
        Ok(ConditionSet { options })
    }

    /// Builds a set from already parsed options. `None` when `options` is empty, has more than
    /// [`MAX_OPTIONS`] or has a duplicate or blank name.
    pub fn new(options: Vec<(String, Condition)>) -> Option<ConditionSet> {
        let mut seen = HashSet::new();
        if options.is_empty()
            || options.len() > MAX_OPTIONS
            || !options
                .iter()
                .all(|(o, _)| !o.trim().is_empty() && seen.insert(o.as_str()))
        {
            return None;
        }
        Some(ConditionSet { options })
    }

    /// The options and their conditions, in key order.
    pub fn options(&self) -> impl Iterator<Item = (&str, &Condition)> {
        self.options.iter().map(|(o, c)| (o.as_str(), c))
    }

    /// Every option with the value of its condition under `vars`, in key order. This is the
    /// one evaluation behind both [`choose`](Self::choose) (the verdict) and the evidence shown
    /// with a verdict, so the two can never disagree.
    pub fn evaluate<'a, 'v>(
        &'a self,
        vars: &'v Vars,
    ) -> impl Iterator<Item = (&'a str, bool)> + use<'a, 'v> {
        self.options.iter().map(|(o, c)| (o.as_str(), c.eval(vars)))
    }

    /// The first option, in key order, whose condition is true; `None` when none is.
    pub fn choose(&self, vars: &Vars) -> Option<&str> {
        self.evaluate(vars)
            .find(|&(_, truth)| truth)
            .map(|(option, _)| option)
    }

    /// The number of options (at least one).
    pub fn len(&self) -> usize {
        self.options.len()
    }

    /// Always `false`: a set has at least one option.
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }
}

impl fmt::Display for ConditionSet {
    /// The set as a JSON object with canonical conditions, in key order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (option, condition)) in self.options.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let key = serde_json::to_string(option).map_err(|_| fmt::Error)?;
            let value = serde_json::to_string(&condition.to_string()).map_err(|_| fmt::Error)?;
            write!(f, "{key}: {value}")?;
        }
        f.write_str("}")
    }
}

/// The options of an `auto_verify_conditions` object in key order, each with its condition text
/// as written (from either shape; `None` where the value is of neither shape), without parsing
/// the conditions — for showing a set, also one that does not parse. Errors only for invalid
/// JSON, a non-object, an empty object or too many options.
pub fn option_texts(json: &str) -> Result<Vec<(String, Option<String>)>, ConditionSetError> {
    Ok(raw_entries(json)?
        .into_iter()
        .map(|(option, value)| match value {
            RawValue::Str(text) => (option, Some(text)),
            RawValue::Other(_) => (option, None),
        })
        .collect())
}

/// One value of the object, before any checking: the condition string (from either shape), or
/// a description of what stood there instead.
#[derive(Debug)]
pub(super) enum RawValue {
    Str(String),
    Other(&'static str),
}

/// The key of the platform's `{"condition": "…"}` option objects.
const CONDITION_KEY: &str = "condition";

/// The object's entries in document order, duplicates included. Errors only for invalid JSON,
/// a non-object or an empty object.
pub(super) fn raw_entries(json: &str) -> Result<Vec<(String, RawValue)>, ConditionSetError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let top = de.deserialize_any(TopVisitor)?;
    de.end()?;
    match top {
        Top::Object(entries, _) if entries.is_empty() => Err(ConditionSetError::Empty),
        Top::Object(_, found) if found > MAX_OPTIONS => {
            Err(ConditionSetError::TooManyOptions { found })
        }
        Top::Object(entries, _) => Ok(entries),
        Top::Other(found) => Err(ConditionSetError::NotAnObject { found }),
    }
}

enum Top {
    /// The first [`MAX_OPTIONS`] entries (the rest are counted, not kept) and the count.
    Object(Vec<(String, RawValue)>, usize),
    Other(&'static str),
}

/// Accepts any JSON value, so that a non-object gets our own error; collects an object's
/// entries in order (serde_json's `Map` would sort them unless `preserve_order` is on).
struct TopVisitor;

macro_rules! other_visits {
    ($ret:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($ret(self, "a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($ret(self, "a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($ret(self, "a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($ret(self, "a number"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($ret(self, "null"))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($ret(self, "null"))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($ret(self, "an array"))
        }
    };
}

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of option → condition string")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Top::Other("a string"))
    }

    other_visits!(|_, what| Top::Other(what));

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        let mut found = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            found += 1;
            if entries.len() < MAX_OPTIONS {
                let value = map.next_value_seed(ValueSeed { inner: false })?;
                entries.push((key, value));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Top::Object(entries, found))
    }
}

/// Deserializes one option's value: a string, or the name of the type found instead. At the
/// option level (`inner: false`) an object is the platform's `{"condition": "…"}` shape; inside
/// it (`inner: true`) only a string is a condition.
#[derive(Clone, Copy)]
struct ValueSeed {
    inner: bool,
}

impl<'de> de::DeserializeSeed<'de> for ValueSeed {
    type Value = RawValue;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

macro_rules! inner_other {
    ($what:literal) => {
        RawValue::Other(concat!("an object whose \"condition\" is ", $what))
    };
}

impl ValueSeed {
    /// What stood where a condition string was expected.
    fn other(self, what: &'static str) -> RawValue {
        if !self.inner {
            return RawValue::Other(what);
        }
        match what {
            "a boolean" => inner_other!("a boolean"),
            "a number" => inner_other!("a number"),
            "null" => inner_other!("null"),
            "an object" => inner_other!("an object"),
            _ => inner_other!("an array"),
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a condition string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RawValue::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(RawValue::Str(v))
    }

    other_visits!(ValueSeed::other);

    /// The platform's shape: the `"condition"` member is the condition, other members are
    /// ignored.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        if self.inner {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(self.other("an object"));
        }
        let mut condition: Option<RawValue> = None;
        let mut twice = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == CONDITION_KEY {
                let value = map.next_value_seed(ValueSeed { inner: true })?;
                twice |= condition.is_some();
                condition.get_or_insert(value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(match condition {
            _ if twice => RawValue::Other("an object with \"condition\" more than once"),
            Some(value) => value,
            None => RawValue::Other("an object without a \"condition\" key"),
        })
    }
}

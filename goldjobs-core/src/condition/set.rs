//! `auto_verify_conditions`: named options with a condition each, in key order.

use std::collections::HashSet;
use std::fmt;

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
    #[error("conditions must be a JSON object of option → condition string, found {found}")]
    NotAnObject {
        /// The JSON type found (`an array`, `a string`, …).
        found: &'static str,
    },
    /// The object has no options.
    #[error("conditions object has no options")]
    Empty,
    /// An option's value is not a string.
    #[error("option {option:?}: condition must be a string, found {found}")]
    NotAString {
        /// The option name.
        option: String,
        /// The JSON type found.
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
/// (CONTRACT.md §6.4), each with its parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionSet {
    options: Vec<(String, Condition)>,
}

impl ConditionSet {
    /// Parses a JSON object `{"A": "price_change_percent >= 1.0", "B": …}`, keeping the key
    /// order. Rejects anything that is not an object, an empty object, non-string values,
    /// duplicate keys and conditions that do not parse (the error names the option and the
    /// position) and blank option names. The first problem found is returned; [`validate`](super::validate) lists all.
    pub fn from_json(json: &str) -> Result<ConditionSet, ConditionSetError> {
        let mut options = Vec::new();
        for (option, value) in raw_entries(json)? {
            let text = match value {
                RawValue::Str(text) => text,
                RawValue::Other(found) => {
                    return Err(ConditionSetError::NotAString { option, found })
                }
            };
            if option.trim().is_empty() {
                return Err(ConditionSetError::BlankOption { option });
            }
            if options.iter().any(|(o, _)| *o == option) {
                return Err(ConditionSetError::DuplicateOption { option });
            }
            match Condition::parse(&text) {
                Ok(condition) => options.push((option, condition)),
                Err(error) => return Err(ConditionSetError::Condition { option, error }),
            }
        }
        Ok(ConditionSet { options })
    }

    /// Builds a set from already parsed options. `None` when `options` is empty or has a
    /// duplicate or blank name.
    pub fn new(options: Vec<(String, Condition)>) -> Option<ConditionSet> {
        let mut seen = HashSet::new();
        if options.is_empty()
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

    /// The first option, in key order, whose condition is true; `None` when none is.
    pub fn choose(&self, vars: &Vars) -> Option<&str> {
        self.options
            .iter()
            .find(|(_, c)| c.eval(vars))
            .map(|(o, _)| o.as_str())
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

/// One value of the object, before any checking.
#[derive(Debug)]
pub(super) enum RawValue {
    Str(String),
    Other(&'static str),
}

/// The object's entries in document order, duplicates included. Errors only for invalid JSON,
/// a non-object or an empty object.
pub(super) fn raw_entries(json: &str) -> Result<Vec<(String, RawValue)>, ConditionSetError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let top = de.deserialize_any(TopVisitor)?;
    de.end()?;
    match top {
        Top::Object(entries) if entries.is_empty() => Err(ConditionSetError::Empty),
        Top::Object(entries) => Ok(entries),
        Top::Other(found) => Err(ConditionSetError::NotAnObject { found }),
    }
}

enum Top {
    Object(Vec<(String, RawValue)>),
    Other(&'static str),
}

/// Accepts any JSON value, so that a non-object gets our own error; collects an object's
/// entries in order (serde_json's `Map` would sort them unless `preserve_order` is on).
struct TopVisitor;

macro_rules! other_visits {
    ($ret:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($ret("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($ret("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($ret("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($ret("a number"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($ret("null"))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($ret("null"))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($ret("an array"))
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

    other_visits!(Top::Other);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValueSeed)?;
            entries.push((key, value));
        }
        Ok(Top::Object(entries))
    }
}

/// Deserializes one option's value: a string, or the name of the type found instead.
struct ValueSeed;

impl<'de> de::DeserializeSeed<'de> for ValueSeed {
    type Value = RawValue;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
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

    other_visits!(RawValue::Other);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RawValue::Other("an object"))
    }
}

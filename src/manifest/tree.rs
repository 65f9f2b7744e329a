//! Reading manifest text into a `serde_json::Value` tree, stricter than `Value`'s own
//! `Deserialize`: repeated keys, non-finite numbers and keys that are not scalars are errors
//! carrying the parser's line and column, instead of being silently merged, nulled or dropped.
//!
//! The tree is also kept within the manifest limits (`crate::limits`) while it is built, value by
//! value in document order: how many values (a YAML alias's value counts again at every use, so
//! an alias bomb is refused after a million values, not after expanding them all), how deep they
//! nest, how long a string is. The first limit crossed is recorded in the [`Budget`], which the
//! caller turns into its own problem (the parser's error only stops the parse).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::limits::{MANIFEST_NESTING, MANIFEST_STRING_BYTES, MANIFEST_VALUES};

/// A manifest limit a tree crossed while it was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Crossed {
    /// More than `MANIFEST_VALUES` values.
    Values,
    /// A list or mapping nested this deep (more than `MANIFEST_NESTING`).
    Nesting(usize),
    /// A string of this many bytes (more than `MANIFEST_STRING_BYTES`), and its first characters.
    String(usize, String),
}

/// What building one tree has used of the limits.
#[derive(Default)]
pub(crate) struct Budget {
    values: Cell<usize>,
    crossed: std::cell::RefCell<Option<Crossed>>,
}

impl Budget {
    /// The limit the tree crossed, if any.
    pub(crate) fn crossed(&self) -> Option<Crossed> {
        self.crossed.borrow().clone()
    }

    fn cross<E: de::Error>(&self, c: Crossed) -> E {
        let message = format!("manifest limit crossed: {c:?}");
        self.crossed.borrow_mut().get_or_insert(c);
        E::custom(message)
    }

    /// One more value.
    fn count<E: de::Error>(&self) -> Result<(), E> {
        let n = self.values.get() + 1;
        self.values.set(n);
        if n > MANIFEST_VALUES {
            return Err(self.cross(Crossed::Values));
        }
        Ok(())
    }

    fn string<E: de::Error>(&self, s: &str) -> Result<(), E> {
        if s.len() > MANIFEST_STRING_BYTES {
            return Err(self.cross(Crossed::String(s.len(), s.chars().take(60).collect())));
        }
        Ok(())
    }
}

/// A parsed manifest tree: deserialize it with a [`TreeSeed`].
pub(crate) struct Tree(pub(crate) Value);

/// Deserializes one value of the tree at `depth` (the top-level value is at depth 1 when it is
/// a list or mapping), within the `budget`.
#[derive(Clone, Copy)]
pub(crate) struct TreeSeed<'b> {
    pub(crate) budget: &'b Budget,
    pub(crate) depth: usize,
}

impl<'de> DeserializeSeed<'de> for TreeSeed<'_> {
    type Value = Tree;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(TreeVisitor(self)).map(Tree)
    }
}

struct TreeVisitor<'b>(TreeSeed<'b>);

impl<'b> TreeVisitor<'b> {
    /// The seed for the items of a list or mapping opened here.
    fn nested<E: de::Error>(&self) -> Result<TreeSeed<'b>, E> {
        let TreeSeed { budget, depth } = self.0;
        budget.count()?;
        if depth + 1 > MANIFEST_NESTING {
            return Err(budget.cross(Crossed::Nesting(depth + 1)));
        }
        Ok(TreeSeed { budget, depth: depth + 1 })
    }

    fn scalar<E: de::Error>(&self, v: Value) -> Result<Value, E> {
        self.0.budget.count()?;
        Ok(v)
    }
}

impl<'de> Visitor<'de> for TreeVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-like value (null, boolean, number, string, list or mapping)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.scalar(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.scalar(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.scalar(Value::from(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(i) => self.scalar(Value::from(i)),
            Err(_) => match u64::try_from(v) {
                Ok(u) => self.scalar(Value::from(u)),
                Err(_) => self.visit_f64(v as f64),
            },
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        match u64::try_from(v) {
            Ok(u) => self.scalar(Value::from(u)),
            Err(_) => self.visit_f64(v as f64),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.budget.count()?;
        // serde_json's own Value would store NaN and infinities as null, silently.
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number; manifests only hold finite numbers")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.budget.count()?;
        self.0.budget.string(v)?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.budget.count()?;
        self.0.budget.string(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.scalar(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.scalar(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let item = self.nested()?;
        // Cap the pre-allocation: a size hint comes from the input.
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(x) = seq.next_element_seed(item)? {
            v.push(x.0);
        }
        Ok(Value::Array(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let item = self.nested()?;
        let mut m = Map::new();
        // The seed rejects a repeated key while reading it, so the error points at that key.
        while let Some(key) = map.next_key_seed(KeySeed(&m, item.budget))? {
            let value = map.next_value_seed(item)?;
            m.insert(key, value.0);
        }
        Ok(Value::Object(m))
    }
}

/// A mapping key: strings as they are; numbers and booleans (YAML allows them) as their text.
/// Holds the keys read so far, to refuse a repeated one. The check happens inside the visitor,
/// while the key is being read, so that serde_norway pins the error on the key's own line.
/// Keys are not values (the budget does not count them), but their length is limited as a
/// string's.
struct KeySeed<'m>(&'m Map<String, Value>, &'m Budget);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(KeyVisitor(self.0, self.1))
    }
}

struct KeyVisitor<'m>(&'m Map<String, Value>, &'m Budget);

impl KeyVisitor<'_> {
    fn accept<E: de::Error>(self, key: String) -> Result<String, E> {
        self.1.string(&key)?;
        if self.0.contains_key(&key) {
            let shown = serde_json::to_string(&key).unwrap_or_default();
            return Err(E::custom(format!("duplicate key {shown}")));
        }
        Ok(key)
    }
}

impl<'de> Visitor<'de> for KeyVisitor<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number or boolean as a mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        match Number::from_f64(v) {
            Some(n) => self.accept(n.to_string()),
            None => Err(E::custom(format!("{v} is not a usable mapping key"))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.accept(v)
    }
}

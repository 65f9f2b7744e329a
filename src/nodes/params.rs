//! One typed params struct per node, declared once with [`node_params!`]: each field's name, type,
//! default, allowed range and doc. The node's `ParamSpec`s (hence validation, `node-types` and the
//! pure runtime's schema) and its typed reading of params both derive from that declaration.

use serde_json::Value;

use super::{ParamKind, Params};
use crate::error::NodeError;

/// A Rust type a param can be read as. Reading re-checks the declared kind, so a node built from
/// the Rust API without manifest validation gets the same messages as a manifest.
pub trait ParamValue: Sized {
    /// The default as JSON for the `ParamSpec` (`None`: optional, no default).
    fn default_json(&self) -> Option<Value>;
    fn read(name: &str, kind: &ParamKind, v: &Value) -> Result<Self, NodeError>;
}

fn wrong(name: &str, kind: &ParamKind, v: &Value) -> NodeError {
    NodeError::permanent(format!("param '{name}' must be {kind}, found {v}"))
}

impl ParamValue for i64 {
    fn default_json(&self) -> Option<Value> {
        Some(Value::from(*self))
    }

    fn read(name: &str, kind: &ParamKind, v: &Value) -> Result<i64, NodeError> {
        let x = v.as_i64().ok_or_else(|| wrong(name, kind, v))?;
        let ok = match kind {
            ParamKind::Int { min, max } => (*min..=*max).contains(&x),
            ParamKind::IntChoice(c) => c.contains(&x),
            _ => false,
        };
        ok.then_some(x).ok_or_else(|| wrong(name, kind, v))
    }
}

impl ParamValue for f64 {
    fn default_json(&self) -> Option<Value> {
        Some(Value::from(*self))
    }

    fn read(name: &str, kind: &ParamKind, v: &Value) -> Result<f64, NodeError> {
        let x = v.as_f64().ok_or_else(|| wrong(name, kind, v))?;
        match kind {
            ParamKind::Float { min, max } if x.is_finite() && (*min..=*max).contains(&x) => Ok(x),
            _ => Err(wrong(name, kind, v)),
        }
    }
}

impl ParamValue for bool {
    fn default_json(&self) -> Option<Value> {
        Some(Value::from(*self))
    }

    fn read(name: &str, kind: &ParamKind, v: &Value) -> Result<bool, NodeError> {
        v.as_bool().ok_or_else(|| wrong(name, kind, v))
    }
}

/// A choice among fixed strings: the declared `&'static str` itself is kept.
impl ParamValue for &'static str {
    fn default_json(&self) -> Option<Value> {
        Some(Value::from(*self))
    }

    fn read(name: &str, kind: &ParamKind, v: &Value) -> Result<&'static str, NodeError> {
        match (kind, v.as_str()) {
            (ParamKind::Choice(c), Some(s)) => c.iter().copied().find(|x| *x == s).ok_or_else(|| wrong(name, kind, v)),
            _ => Err(wrong(name, kind, v)),
        }
    }
}

/// A param of any shape (`ParamKind::Any`, e.g. ChannelMixNode's matrix): the node checks it.
impl ParamValue for Value {
    fn default_json(&self) -> Option<Value> {
        Some(self.clone())
    }

    fn read(name: &str, kind: &ParamKind, v: &Value) -> Result<Value, NodeError> {
        match kind {
            ParamKind::Any => Ok(v.clone()),
            _ => Err(wrong(name, kind, v)),
        }
    }
}

/// An optional param: absent or `null` is `None`.
impl<T: ParamValue> ParamValue for Option<T> {
    fn default_json(&self) -> Option<Value> {
        self.as_ref().and_then(T::default_json)
    }

    fn read(name: &str, kind: &ParamKind, v: &Value) -> Result<Option<T>, NodeError> {
        if v.is_null() {
            return Ok(None);
        }
        T::read(name, kind, v).map(Some)
    }
}

/// Reads one param: the given value checked against its kind, or the default when absent.
pub fn read_or<T: ParamValue>(params: &Params, name: &str, kind: &ParamKind, default: T) -> Result<T, NodeError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => T::read(name, kind, v),
    }
}

/// Declares a node's params struct:
///
/// ```ignore
/// node_params! {
///     /// LogMelNode's params.
///     pub struct LogMelParams {
///         n_mels: i64 = 80, ParamKind::IntChoice(&[80, 128]), "number of mel bands";
///     }
/// }
/// ```
///
/// gives the struct (with the docs on its fields), `Default`, `specs()` (the `ParamSpec`s, in
/// declaration order, every one optional with its default) and `from_params(&Params)`.
macro_rules! node_params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $field:ident : $ty:ty = $default:expr, $kind:expr, $doc:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( #[doc = $doc] pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $name {
            /// The declared params, for the node type's schema.
            pub fn specs() -> Vec<$crate::nodes::ParamSpec> {
                vec![$(
                    $crate::nodes::ParamSpec {
                        name: stringify!($field),
                        kind: $kind,
                        default: $crate::nodes::params::ParamValue::default_json(&{ let d: $ty = $default; d }),
                        required: false,
                        doc: $doc,
                    },
                )*]
            }

            /// Reads validated params (or any JSON map: each value is checked against its kind).
            pub fn from_params(params: &$crate::nodes::Params) -> Result<Self, $crate::error::NodeError> {
                Ok($name {
                    $( $field: $crate::nodes::params::read_or(params, stringify!($field), &$kind, $default)?, )*
                })
            }
        }
    };
}

pub(crate) use node_params;

#[cfg(test)]
mod tests {
    use super::*;

    node_params! {
        /// A test struct.
        pub struct Demo {
            n: i64 = 80, ParamKind::IntChoice(&[80, 128]), "bands";
            x: f64 = 0.5, ParamKind::Float { min: 0.0, max: 1.0 }, "a fraction";
            mode: &'static str = "a", ParamKind::Choice(&["a", "b"]), "the mode";
            cap: Option<f64> = None, ParamKind::Float { min: 1.0, max: 10.0 }, "optional cap";
            on: bool = true, ParamKind::Bool, "switch";
        }
    }

    fn map(v: Value) -> Params {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn specs_and_reading_come_from_one_declaration() {
        let specs = Demo::specs();
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        assert_eq!(names, ["n", "x", "mode", "cap", "on"]);
        assert_eq!(specs[0].default, Some(Value::from(80)));
        assert_eq!(specs[2].default, Some(Value::from("a")));
        assert_eq!(specs[3].default, None);
        assert!(specs.iter().all(|s| !s.required));
        assert_eq!(Demo::from_params(&Params::new()).expect("defaults"), Demo::default());
        let d = Demo::from_params(&map(serde_json::json!({"n": 128, "mode": "b", "cap": 2.0, "on": false}))).expect("ok");
        assert_eq!((d.n, d.mode, d.cap, d.on), (128, "b", Some(2.0), false));
        let e = Demo::from_params(&map(serde_json::json!({"n": 81}))).expect_err("not a choice");
        assert_eq!(e.message, "param 'n' must be one of 80, 128, found 81");
        let e = Demo::from_params(&map(serde_json::json!({"x": 2}))).expect_err("out of range");
        assert_eq!(e.message, "param 'x' must be a number from 0 to 1, found 2");
        let e = Demo::from_params(&map(serde_json::json!({"mode": "c"}))).expect_err("not a choice");
        assert_eq!(e.message, "param 'mode' must be one of \"a\", \"b\", found \"c\"");
    }
}

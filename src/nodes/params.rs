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

/// Reads one required param: absent or `null` is an error naming what it must be.
pub fn read_required<T: ParamValue>(params: &Params, name: &str, kind: &ParamKind) -> Result<T, NodeError> {
    match params.get(name) {
        None | Some(Value::Null) => Err(NodeError::permanent(format!("param '{name}' is required ({kind})"))),
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
///         output_rate: i64, ParamKind::Int { min: 8000, max: 192000 }, "a required param";
///     }
/// }
/// ```
///
/// gives the struct (with the docs on its fields), `specs()` (the `ParamSpec`s, in declaration
/// order: a field with `= default` is optional with that default, one without is required) and
/// `from_params(&Params)`; when every field has a default, also `Default`.
macro_rules! node_params {
    // Per-field pieces: the default as JSON, whether required, how to read it.
    (@default_json $ty:ty) => { None };
    (@default_json $ty:ty, $default:expr) => {
        $crate::nodes::params::ParamValue::default_json(&{ let d: $ty = $default; d })
    };
    (@required) => { true };
    (@required $default:expr) => { false };
    (@read $params:ident, $field:ident, $kind:expr, $ty:ty) => {
        $crate::nodes::params::read_required::<$ty>($params, stringify!($field), &$kind)
    };
    (@read $params:ident, $field:ident, $kind:expr, $ty:ty, $default:expr) => {
        $crate::nodes::params::read_or::<$ty>($params, stringify!($field), &$kind, $default)
    };
    (@body
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $field:ident : $ty:ty $(= $default:expr)?, $kind:expr, $doc:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( #[doc = $doc] pub $field: $ty, )*
        }

        impl $name {
            /// The declared params, for the node type's schema.
            pub fn specs() -> Vec<$crate::nodes::ParamSpec> {
                vec![$(
                    $crate::nodes::ParamSpec {
                        name: stringify!($field),
                        kind: $kind,
                        default: $crate::nodes::params::node_params!(@default_json $ty $(, $default)?),
                        required: $crate::nodes::params::node_params!(@required $($default)?),
                        doc: $doc,
                    },
                )*]
            }

            /// Reads validated params (or any JSON map: each value is checked against its kind).
            pub fn from_params(params: &$crate::nodes::Params) -> Result<Self, $crate::error::NodeError> {
                Ok($name {
                    $( $field: $crate::nodes::params::node_params!(@read params, $field, $kind, $ty $(, $default)?)?, )*
                })
            }
        }
    };
    // Every field has a default: the struct also gets `Default`.
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $field:ident : $ty:ty = $default:expr, $kind:expr, $doc:literal; )*
        }
    ) => {
        $crate::nodes::params::node_params! { @body
            $(#[$meta])*
            pub struct $name {
                $( $field : $ty = $default, $kind, $doc; )*
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }
    };
    // Some field is required: no `Default`.
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $field:ident : $ty:ty $(= $default:expr)?, $kind:expr, $doc:literal; )*
        }
    ) => {
        $crate::nodes::params::node_params! { @body
            $(#[$meta])*
            pub struct $name {
                $( $field : $ty $(= $default)?, $kind, $doc; )*
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

    node_params! {
        /// A test struct with a required field.
        pub struct WithRequired {
            rate: i64, ParamKind::Int { min: 8000, max: 48000 }, "required rate";
            q: &'static str = "high", ParamKind::Choice(&["low", "high"]), "quality";
        }
    }

    #[test]
    fn a_field_without_default_is_required() {
        let specs = WithRequired::specs();
        assert!(specs[0].required && specs[0].default.is_none());
        assert!(!specs[1].required);
        let e = WithRequired::from_params(&Params::new()).expect_err("required");
        assert_eq!(e.message, "param 'rate' is required (an integer from 8000 to 48000)");
        let w = WithRequired::from_params(&map(serde_json::json!({"rate": 16000}))).expect("ok");
        assert_eq!((w.rate, w.q), (16000, "high"));
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

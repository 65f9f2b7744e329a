//! Typed node params declared once: [`node_params!`] turns one struct declaration (fields,
//! defaults, kinds with their ranges, docs) into the struct, its [`ParamSpec`]s for validation and
//! `node-types`, and the reader the node's factory builds it with.
//!
//! A node then keeps every fact about its params in one place: the manifest validator checks
//! kinds and ranges from the specs, the struct's own `problems` adds the checks that involve
//! several params (run by validation and by the factory alike), and the DSP code takes the struct.

use serde_json::Value;

use super::{ParamKind, Params};
use crate::error::NodeError;

/// A Rust type a param is read into.
pub trait ParamValue: Sized {
    /// Reads the param from a JSON value already checked against its kind.
    fn from_json(v: &Value) -> Option<Self>;
    /// The default as JSON, for the spec; `None` for an optional param without a default.
    fn to_json(&self) -> Option<Value>;
    /// Whether an absent param is acceptable with no default (`Option` fields).
    const OPTIONAL: bool = false;
}

impl ParamValue for f64 {
    fn from_json(v: &Value) -> Option<f64> {
        v.as_f64()
    }
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(*self))
    }
}

impl ParamValue for u32 {
    fn from_json(v: &Value) -> Option<u32> {
        v.as_u64().and_then(|n| u32::try_from(n).ok())
    }
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(*self))
    }
}

impl ParamValue for String {
    fn from_json(v: &Value) -> Option<String> {
        v.as_str().map(str::to_string)
    }
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.as_str()))
    }
}

impl ParamValue for Value {
    fn from_json(v: &Value) -> Option<Value> {
        Some(v.clone())
    }
    fn to_json(&self) -> Option<Value> {
        Some(self.clone())
    }
}

impl<T: ParamValue> ParamValue for Option<T> {
    fn from_json(v: &Value) -> Option<Option<T>> {
        T::from_json(v).map(Some)
    }
    fn to_json(&self) -> Option<Value> {
        self.as_ref().and_then(T::to_json)
    }
    const OPTIONAL: bool = true;
}

/// Whether `v` is of `kind`, in range (the validator's rules, less its wording: params that
/// reach a factory have normally been validated already; this guards direct callers).
pub fn fits(kind: &ParamKind, v: &Value) -> bool {
    match kind {
        ParamKind::Int { min, max } => v.as_i64().is_some_and(|i| (*min..=*max).contains(&i)),
        ParamKind::Float { min, max } => v.as_f64().is_some_and(|f| f.is_finite() && f >= *min && f <= *max),
        ParamKind::Choice(c) => v.as_str().is_some_and(|s| c.contains(&s)),
        ParamKind::IntChoice(c) => v.as_i64().is_some_and(|i| c.contains(&i)),
        ParamKind::Bool => v.is_boolean(),
        ParamKind::Any => true,
    }
}

/// Reads one param: the given value (checked against `kind`), else `default`.
pub fn read<T: ParamValue>(params: &Params, name: &str, kind: &ParamKind, default: T) -> Result<T, NodeError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) if fits(kind, v) => {
            T::from_json(v).ok_or_else(|| NodeError::permanent(format!("param '{name}' must be {kind}, found {v}")))
        }
        Some(v) => Err(NodeError::permanent(format!("param '{name}' must be {kind}, found {v}"))),
    }
}

/// Declares a node's params struct. Each field is
/// `name: Type = default, kind, "doc";` where `Type` is `f64`, `u32`, `String`, `Value` or an
/// `Option` of one (absent and no default). Generates the struct, `Default`, `specs()` (the
/// [`ParamSpec`](super::ParamSpec)s) and `from_params(&Params)`.
#[macro_export]
macro_rules! node_params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $default:expr, $kind:expr, $doc:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $name {
            /// The params as declared specs (name, kind and range, default, doc).
            pub fn specs() -> Vec<$crate::nodes::ParamSpec> {
                use $crate::nodes::params::ParamValue as _;
                vec![$(
                    {
                        let default: $ty = $default;
                        $crate::nodes::ParamSpec {
                            name: stringify!($field),
                            kind: $kind,
                            default: default.to_json(),
                            required: false,
                            doc: $doc,
                        }
                    },
                )*]
            }

            /// Reads validated params (defaults for absent ones); a value of the wrong kind or out
            /// of range is an error naming the param.
            pub fn from_params(params: &$crate::nodes::Params) -> Result<Self, $crate::error::NodeError> {
                Ok($name {
                    $( $field: $crate::nodes::params::read(params, stringify!($field), &$kind, $default)?, )*
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::node_params! {
        /// A test struct.
        pub struct Example {
            gain: f64 = 1.5, ParamKind::Float { min: 0.0, max: 2.0 }, "a gain";
            count: Option<u32> = None, ParamKind::Int { min: 1, max: 8 }, "a count";
        }
    }

    #[test]
    fn specs_and_reading_come_from_one_declaration() {
        let specs = Example::specs();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "gain");
        assert_eq!(specs[0].default, Some(Value::from(1.5)));
        assert_eq!(specs[1].default, None);
        assert!(!specs[1].required);
        let mut p = Params::new();
        assert_eq!(Example::from_params(&p).unwrap(), Example { gain: 1.5, count: None });
        p.insert("count".into(), Value::from(3));
        assert_eq!(Example::from_params(&p).unwrap().count, Some(3));
        p.insert("gain".into(), Value::from(5.0));
        let e = Example::from_params(&p).unwrap_err();
        assert_eq!(e.message, "param 'gain' must be a number from 0 to 2, found 5.0");
    }
}

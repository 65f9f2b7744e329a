//! Node types as JSON: the schema the pure-Python runtime validates against (shipped as
//! `python/remotemedia/_pure/node_types.json`) and what `remotemedia node-types` prints.

use serde_json::{json, Value};

use super::{InputPorts, NodeType, ParamKind, ParamSpec, Registry};

fn param_json(p: &ParamSpec) -> Value {
    let mut v = json!({
        "name": p.name,
        "required": p.required,
        "default": p.default.clone().unwrap_or(Value::Null),
        "doc": p.doc,
    });
    let o = v.as_object_mut().expect("object literal");
    match &p.kind {
        ParamKind::Int { min, max } => {
            o.insert("kind".into(), json!("int"));
            o.insert("min".into(), json!(min));
            o.insert("max".into(), json!(max));
        }
        ParamKind::Float { min, max } => {
            o.insert("kind".into(), json!("float"));
            o.insert("min".into(), json!(min));
            o.insert("max".into(), json!(max));
        }
        ParamKind::Choice(c) => {
            o.insert("kind".into(), json!("choice"));
            o.insert("choices".into(), json!(c));
        }
        ParamKind::IntChoice(c) => {
            o.insert("kind".into(), json!("int_choice"));
            o.insert("choices".into(), json!(c));
        }
        ParamKind::Bool => {
            o.insert("kind".into(), json!("bool"));
        }
        ParamKind::Any => {
            o.insert("kind".into(), json!("any"));
        }
    }
    v
}

/// One node type as JSON.
pub fn node_type_json(t: &NodeType) -> Value {
    let inputs = match &t.inputs {
        InputPorts::One => json!({"kind": "one"}),
        InputPorts::Named(ports) => json!({"kind": "named", "ports": ports}),
        InputPorts::Any => json!({"kind": "any"}),
    };
    json!({
        "name": t.name,
        "doc": t.doc,
        "params": t.params.iter().map(param_json).collect::<Vec<_>>(),
        "inputs": inputs,
        "outputs": t.outputs,
        "open_params": t.open_params,
        "open_outputs": t.open_outputs,
        "stateful": t.stateful,
    })
}

impl Registry {
    /// Every registered type as JSON, sorted by name.
    pub fn describe(&self) -> Value {
        Value::Array(self.names().filter_map(|n| self.get(n)).map(node_type_json).collect())
    }
}

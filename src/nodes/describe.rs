//! Node types as JSON: the schema the pure-Python runtime validates against (the `node_types` of
//! `python/remotemedia/schema.json`) and what `remotemedia node-types` prints.

use serde_json::{json, Value};

use super::{InputPorts, NodeType, ParamKind, ParamSpec, Registry};

fn param_json(p: &ParamSpec) -> Value {
    let mut v = kind_json(&p.kind);
    let o = v.as_object_mut().expect("kind_json returns an object");
    o.insert("name".into(), json!(p.name));
    o.insert("required".into(), json!(p.required));
    o.insert("default".into(), p.default.clone().unwrap_or(Value::Null));
    o.insert("doc".into(), json!(p.doc));
    v
}

/// A kind as `{"kind": ..., and its range, choices, item or variants}`.
pub fn kind_json(kind: &ParamKind) -> Value {
    match kind {
        ParamKind::Int { min, max } => json!({"kind": "int", "min": min, "max": max}),
        ParamKind::Float { min, max } => json!({"kind": "float", "min": min, "max": max}),
        ParamKind::Choice(c) => json!({"kind": "choice", "choices": c}),
        ParamKind::IntChoice(c) => json!({"kind": "int_choice", "choices": c}),
        ParamKind::Bool => json!({"kind": "bool"}),
        ParamKind::Any => json!({"kind": "any"}),
        ParamKind::List { item, min_len, max_len } => {
            json!({"kind": "list", "item": kind_json(item), "min_len": min_len, "max_len": max_len})
        }
        ParamKind::Tagged { tag, variants } => json!({
            "kind": "tagged",
            "tag": tag,
            "variants": variants.iter().map(|v| json!({
                "name": v.name,
                "doc": v.doc,
                "fields": v.fields.iter().map(param_json).collect::<Vec<_>>(),
                "increasing": v.increasing.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
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

//! The one document every other copy of the engine's facts is generated from: `remotemedia schema`
//! prints it, `python/remotemedia/schema.json` is that output checked in, and `scripts/gen.py`
//! writes the Python stubs and the docs tables from it (docs/architecture.md, "Where each fact lives").

use serde_json::{json, Value};

use crate::error::NodeErrorKind;
use crate::graph::RuntimeHint;
use crate::manifest::validate::{config_fields, EDGE_FIELDS, NODE_FIELDS, TOP_FIELDS};
use crate::manifest::{PipelineConfig, SUPPORTED_VERSIONS};
use crate::nodes::describe::kind_json;
use crate::nodes::{Registry, DEFAULT_PORT};
use crate::tuning::SwitchKind;

/// Bumped when a key of the document changes meaning (added keys do not bump it).
pub const SCHEMA_VERSION: u32 = 1;

/// Every node error kind, the Python exception it is raised as, and what it means.
const ERROR_KINDS: [(NodeErrorKind, &str, &str); 5] = [
    (NodeErrorKind::Permanent, "NodeError", "will fail again if retried with the same input"),
    (NodeErrorKind::Transient, "NodeError", "may succeed if retried (timeouts, lost connections)"),
    (NodeErrorKind::InvalidInput, "InputError", "the data given to the node is unusable (wrong rate, payload kind, NaN...)"),
    (NodeErrorKind::Panic, "NodeError", "the node panicked; the panic was caught"),
    (NodeErrorKind::CircuitOpen, "CircuitOpenError", "the node was not called: its circuit breaker is open"),
];

/// The whole document: versions, manifest fields, config fields, limits, error kinds, engine
/// switches, Prometheus metric families, node types.
pub fn describe() -> Value {
    let defaults = PipelineConfig::default().to_json();
    let config: Vec<Value> = config_fields()
        .iter()
        .map(|f| {
            let mut v = kind_json(&f.kind);
            let o = v.as_object_mut().expect("kind_json returns an object");
            o.insert("name".into(), json!(f.name));
            o.insert("default".into(), defaults.get(f.name).cloned().unwrap_or(Value::Null));
            o.insert("per_node".into(), json!(f.per_node));
            o.insert("doc".into(), json!(f.doc));
            v
        })
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "engine_version": env!("CARGO_PKG_VERSION"),
        "manifest": {
            "versions": SUPPORTED_VERSIONS,
            "top_fields": TOP_FIELDS,
            "node_fields": NODE_FIELDS,
            "edge_fields": EDGE_FIELDS,
            "runtime_hints": ([RuntimeHint::Auto, RuntimeHint::Rust, RuntimeHint::Python].map(RuntimeHint::name)),
            "default_port": DEFAULT_PORT,
        },
        "config": config,
        "limits": crate::limits::describe(),
        "error_kinds": ERROR_KINDS.iter().map(|(k, exception, doc)| json!({
            "kind": k.name(), "exception": exception, "doc": doc,
        })).collect::<Vec<_>>(),
        "engine_switches": crate::tuning::SWITCHES.iter().map(|s| json!({
            "name": s.name,
            "kind": match s.kind { SwitchKind::Flag => "flag", SwitchKind::Micros => "micros" },
            "max": (s.kind == SwitchKind::Micros).then_some(crate::tuning::MAX_SPIN_US),
            "per_pool": s.per_pool,
            "doc": s.doc,
        })).collect::<Vec<_>>(),
        "cli_exit_codes": {"0": "success", "1": "the pipeline failed or an output could not be written",
                           "2": "bad arguments, manifest or input file"},
        "prometheus_families": crate::metrics_prometheus::describe_families(),
        "node_types": Registry::builtin().describe(),
    })
}

//! Manifest validation: walks the tree, collects every problem with its path, and builds the graph.
//! (Interim minimal version; the full validator replaces it.)

use serde_json::Value;

use crate::error::{ManifestError, Problem};
use crate::graph::{Graph, GraphEdge, GraphNode, RuntimeHint};
use crate::manifest::PipelineConfig;
use crate::nodes::{Params, Registry, DEFAULT_PORT};

pub fn validate(tree: &Value, registry: &Registry) -> Result<Graph, ManifestError> {
    let err = |p: &str, e: &str, f: String| ManifestError { problems: vec![Problem::new(p, e, f)] };
    let nodes_v = tree.get("nodes").and_then(|v| v.as_array()).ok_or_else(|| err("nodes", "a list", "nothing".into()))?;
    let mut nodes = Vec::new();
    for (i, n) in nodes_v.iter().enumerate() {
        let id = n.get("id").and_then(|v| v.as_str()).ok_or_else(|| err(&format!("nodes[{i}].id"), "a string", "nothing".into()))?;
        let ty = n.get("type").and_then(|v| v.as_str()).unwrap_or("");
        let t = registry.get(ty).ok_or_else(|| err(&format!("nodes[{i}].type"), "a known node type", ty.to_string()))?;
        let mut params: Params = n.get("params").and_then(|v| v.as_object()).cloned().unwrap_or_default();
        for p in &t.params {
            if !params.contains_key(p.name) {
                params.insert(p.name.to_string(), p.default.clone().unwrap_or(Value::Null));
            }
        }
        nodes.push(GraphNode { id: id.to_string(), node_type: t.clone(), params, runtime_hint: RuntimeHint::Auto, inputs: vec![], outputs: vec![] });
    }
    let mut edges = Vec::new();
    for (i, e) in tree.get("edges").and_then(|v| v.as_array()).cloned().unwrap_or_default().iter().enumerate() {
        let from = e.get("from").and_then(|v| v.as_str()).unwrap_or("");
        let to = e.get("to").and_then(|v| v.as_str()).unwrap_or("");
        let f = nodes.iter().position(|n| n.id == from).ok_or_else(|| err(&format!("edges[{i}].from"), "a node id", from.to_string()))?;
        let t = nodes.iter().position(|n| n.id == to).ok_or_else(|| err(&format!("edges[{i}].to"), "a node id", to.to_string()))?;
        let port = e.get("input_key").and_then(|v| v.as_str()).map(String::from).unwrap_or_else(|| {
            if nodes[t].node_type.inputs == crate::nodes::InputPorts::Any { from.to_string() } else { DEFAULT_PORT.to_string() }
        });
        let output_key = e.get("output_key").and_then(|v| v.as_str()).map(String::from);
        nodes[f].outputs.push(edges.len());
        nodes[t].inputs.push(edges.len());
        edges.push(GraphEdge { from: f, to: t, output_key, port });
    }
    // Kahn's algorithm, ties broken by manifest order.
    let mut indeg: Vec<usize> = nodes.iter().map(|n| n.inputs.len()).collect();
    let mut order = Vec::new();
    let mut done = vec![false; nodes.len()];
    while order.len() < nodes.len() {
        let Some(next) = (0..nodes.len()).find(|&i| !done[i] && indeg[i] == 0) else {
            return Err(err("edges", "no cycles", "a cycle".into()));
        };
        done[next] = true;
        order.push(next);
        for &e in &nodes[next].outputs {
            indeg[edges[e].to] -= 1;
        }
    }
    let mut config = PipelineConfig::default();
    if let Some(c) = tree.get("config") {
        if let Some(w) = c.get("workers").and_then(|v| v.as_u64()) { config.workers = w as usize; }
        if let Some(m) = c.get("enable_metrics").and_then(|v| v.as_bool()) { config.enable_metrics = m; }
    }
    Ok(Graph { nodes, edges, order, config })
}

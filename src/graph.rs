//! The validated pipeline graph: what a manifest becomes once every problem has been ruled out,
//! and what the dataflow compiler builds operators from.

use std::fmt::Write as _;

use crate::manifest::{NodeReliability, PipelineConfig};
use crate::nodes::{NodeType, Params};

/// Where a node asks to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeHint {
    #[default]
    Auto,
    Rust,
    Python,
}

impl RuntimeHint {
    pub fn name(self) -> &'static str {
        match self {
            RuntimeHint::Auto => "auto",
            RuntimeHint::Rust => "rust",
            RuntimeHint::Python => "python",
        }
    }
}

/// One node of a validated graph.
#[derive(Clone, Debug)]
pub struct GraphNode {
    pub id: String,
    pub node_type: NodeType,
    /// Declared params with defaults filled in.
    pub params: Params,
    pub runtime_hint: RuntimeHint,
    /// The node's own retry and circuit-breaker settings, overriding the pipeline's `config`.
    pub reliability: Option<NodeReliability>,
    /// Indices into `Graph::edges` of the edges ending here, in manifest order.
    pub inputs: Vec<usize>,
    /// Indices into `Graph::edges` of the edges starting here, in manifest order.
    pub outputs: Vec<usize>,
}

/// One edge of a validated graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphEdge {
    /// Index into `Graph::nodes`.
    pub from: usize,
    /// Index into `Graph::nodes`.
    pub to: usize,
    /// The part of the source's output this edge carries; `None` for the whole output.
    pub output_key: Option<String>,
    /// The input port this edge feeds, resolved (`in` for one-input nodes).
    pub port: String,
}

/// A validated pipeline: nodes in manifest order, edges, a deterministic topological order.
#[derive(Clone, Debug)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    /// Node indices in a topological order that depends only on the manifest (ties broken by
    /// manifest order), so that every worker builds the same operators in the same order.
    pub order: Vec<usize>,
    pub config: PipelineConfig,
    /// The manifest's `outputs`: the nodes whose outputs a run returns, in the order listed;
    /// `None` when the manifest has no such section (the sinks are the outputs then).
    pub declared_outputs: Option<Vec<usize>>,
}

impl Graph {
    /// Nodes with no incoming edge: they receive the run's input.
    pub fn sources(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].inputs.is_empty())
    }

    /// Nodes with no outgoing edge.
    pub fn sinks(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].outputs.is_empty())
    }

    /// The nodes whose outputs a run returns, keyed by node id: those the manifest's `outputs`
    /// lists, in its order, or else the sinks, in manifest order.
    pub fn output_nodes(&self) -> Vec<usize> {
        match &self.declared_outputs {
            Some(list) => list.clone(),
            None => self.sinks().collect(),
        }
    }

    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// The graph as Graphviz DOT, for `remotemedia graph`.
    ///
    /// Pipeline nodes are named `n0`, `n1`, ... (manifest order) and labelled with their id, type
    /// and params, so that no node id (any non-empty string is one) can clash with DOT syntax or
    /// with the `input`/`output` markers; each edge line ends with a comment naming its ends by id.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
        s.push_str("  input [shape=oval, label=\"input\"];\n  output [shape=oval, label=\"outputs\"];\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let mut params: Vec<String> = n
                .params
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}={}", v.to_string().replace('"', "")))
                .collect();
            params.sort();
            let mut label = format!("{}\\n{}", dot_escape(&n.id), dot_escape(&n.node_type.name));
            if !params.is_empty() {
                label.push_str("\\n");
                label.push_str(&dot_escape(&params.join(", ")));
            }
            let _ = writeln!(s, "  n{i} [label=\"{label}\"];");
        }
        for i in self.sources() {
            let _ = writeln!(s, "  input -> n{i};");
        }
        for e in &self.edges {
            let mut label = Vec::new();
            if let Some(k) = &e.output_key {
                label.push(k.clone());
            }
            if e.port != crate::nodes::DEFAULT_PORT {
                label.push(format!("→{}", e.port));
            }
            let attrs = if label.is_empty() { String::new() } else { format!(" [label=\"{}\"]", dot_escape(&label.join(" "))) };
            let _ = writeln!(
                s,
                "  n{} -> n{}{attrs}; // {} -> {}",
                e.from,
                e.to,
                comment_safe(&self.nodes[e.from].id),
                comment_safe(&self.nodes[e.to].id)
            );
        }
        for i in self.output_nodes() {
            let _ = writeln!(s, "  n{i} -> output;");
        }
        s.push_str("}\n");
        s
    }
}

/// An id inside a `//` comment: line breaks would end the comment, so they are shown as `\n`.
fn comment_safe(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}

/// Text inside a DOT double-quoted string: backslashes and quotes escaped, line breaks as `\n`.
fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\r', "").replace('\n', "\\n")
}

/// Structural equality: node types compare by name (a `NodeType` holds a factory closure, which
/// has no equality); everything else compares by value. Used to check manifest round trips.
impl PartialEq for GraphNode {
    fn eq(&self, other: &GraphNode) -> bool {
        self.id == other.id
            && self.node_type.name == other.node_type.name
            && self.params == other.params
            && self.runtime_hint == other.runtime_hint
            && self.reliability == other.reliability
            && self.inputs == other.inputs
            && self.outputs == other.outputs
    }
}

impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        self.nodes == other.nodes
            && self.edges == other.edges
            && self.order == other.order
            && self.config == other.config
            && self.declared_outputs == other.declared_outputs
    }
}

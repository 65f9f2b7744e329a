//! The validated pipeline graph: what a manifest becomes once every problem has been ruled out,
//! and what the runtime builds operators from. The graph is symbolic: ids, type names, params and
//! ports, no code. The factories that build its nodes are looked up by type name when it is
//! installed (`runtime::runner::Factories`), so one graph can be installed with other node
//! implementations (Python callbacks, test doubles) and compared, printed or sent as data.

use std::fmt::Write as _;

use crate::manifest::{NodeReliability, PipelineConfig};
use crate::nodes::{InputPorts, NodeType, Params};

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

/// What a graph records of a node's type: its name and the facts the runtime plans by, without
/// the factory (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeKind {
    pub name: String,
    /// Carries state between a session's chunks: one instance per session; no retries by default.
    pub stateful: bool,
    pub inputs: InputPorts,
    /// The declared params' names, in declaration order.
    pub params: Vec<String>,
}

impl NodeKind {
    /// The declared param of that name, if there is one.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|p| *p == name).map(String::as_str)
    }
}

impl From<&NodeType> for NodeKind {
    fn from(t: &NodeType) -> NodeKind {
        NodeKind {
            name: t.name.clone(),
            stateful: t.stateful,
            inputs: t.inputs.clone(),
            params: t.params.iter().map(|p| p.name.to_string()).collect(),
        }
    }
}

/// One node of a validated graph.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphNode {
    pub id: String,
    pub node_type: NodeKind,
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
#[derive(Clone, Debug, PartialEq)]
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

#[cfg(test)]
mod tests {
    //! The graph alone, built by hand: no manifest, no registry, no runtime.
    use super::*;

    fn node(id: &str, inputs: Vec<usize>, outputs: Vec<usize>) -> GraphNode {
        let kind = NodeKind { name: "Test\"Node".into(), stateful: false, inputs: InputPorts::One, params: vec!["gain".into()] };
        let mut params = Params::new();
        params.insert("gain".into(), serde_json::json!(0.5));
        GraphNode { id: id.into(), node_type: kind, params, runtime_hint: RuntimeHint::Auto, reliability: None, inputs, outputs }
    }

    fn edge(from: usize, to: usize, port: &str) -> GraphEdge {
        GraphEdge { from, to, output_key: None, port: port.into() }
    }

    /// a -> b, a -> c, b -> c (port "side"): a diamond's sources, sinks and outputs.
    fn diamond(declared: Option<Vec<usize>>) -> Graph {
        Graph {
            nodes: vec![node("a", vec![], vec![0, 1]), node("b", vec![0], vec![2]), node("c", vec![1, 2], vec![])],
            edges: vec![edge(0, 1, DEFAULT_PORT_NAME), edge(0, 2, DEFAULT_PORT_NAME), edge(1, 2, "side")],
            order: vec![0, 1, 2],
            config: PipelineConfig::default(),
            declared_outputs: declared,
        }
    }

    const DEFAULT_PORT_NAME: &str = crate::nodes::DEFAULT_PORT;

    #[test]
    fn sources_sinks_and_outputs_follow_the_edges() {
        let g = diamond(None);
        assert_eq!(g.sources().collect::<Vec<_>>(), vec![0]);
        assert_eq!(g.sinks().collect::<Vec<_>>(), vec![2]);
        assert_eq!(g.output_nodes(), vec![2], "no outputs section: the sinks");
        assert_eq!(diamond(Some(vec![1, 0])).output_nodes(), vec![1, 0], "the declared outputs, in their order");
        assert_eq!(g.node_index("b"), Some(1));
        assert_eq!(g.node_index("nope"), None);
        assert_eq!(g.nodes[0].node_type.param("gain"), Some("gain"));
        assert_eq!(g.nodes[0].node_type.param("other"), None);
    }

    /// DOT output names nodes by index, labels them with their escaped id, type and params, and
    /// marks named ports; an id with a quote or a line break cannot break out of the syntax.
    #[test]
    fn dot_escapes_ids_and_labels_ports() {
        let mut g = diamond(None);
        g.nodes[1].id = "b\"\nx".into();
        let dot = g.to_dot();
        assert!(dot.contains("n0 [label=\"a\\nTest\\\"Node\\ngain=0.5\"];"), "{dot}");
        assert!(dot.contains("n1 [label=\"b\\\"\\nx\\nTest\\\"Node\\ngain=0.5\"];"), "{dot}");
        assert!(dot.contains("input -> n0;"));
        assert!(dot.contains("n1 -> n2 [label=\"→side\"]; // b\"\\nx -> c"), "{dot}");
        assert!(dot.contains("n0 -> n1; // a -> b"));
        assert!(dot.contains("n2 -> output;"));
        assert_eq!(dot.lines().filter(|l| l.contains("->")).count(), 5, "1 input, 3 edges, 1 output");
    }
}

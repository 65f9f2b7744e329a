//! The engine's errors: manifest problems (all of them at once), node failures that name the node,
//! bad input data, and engine faults.

use std::fmt;

/// One thing wrong with a manifest: where, what was expected, what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where in the manifest, e.g. `nodes[2].params.output_rate`.
    pub path: String,
    /// What would have been accepted.
    pub expected: String,
    /// What the manifest holds there.
    pub found: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> Problem {
        Problem { path: path.into(), expected: expected.into(), found: found.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {}, found {}", self.path, self.expected, self.found)
    }
}

/// Every problem found in a manifest; validation collects them all before anything runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "invalid manifest ({} problem{})", n, if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// How a node failure should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeErrorKind {
    /// Will fail again if retried with the same input.
    Permanent,
    /// May succeed if retried (timeouts, lost connections).
    Transient,
    /// The data given to the node is unusable (wrong rate, wrong kind of payload, NaN...).
    InvalidInput,
    /// The node panicked; the panic was caught and turned into this error.
    Panic,
    /// The node was not called: its circuit breaker is open after repeated failures.
    CircuitOpen,
}

impl NodeErrorKind {
    /// The name Python's `NodeError.kind` and the schema give it.
    pub fn name(self) -> &'static str {
        match self {
            NodeErrorKind::Permanent => "permanent",
            NodeErrorKind::Transient => "transient",
            NodeErrorKind::InvalidInput => "invalid_input",
            NodeErrorKind::Panic => "panic",
            NodeErrorKind::CircuitOpen => "circuit_open",
        }
    }
}

/// A node's failure, with the context the engine adds: which node, which run, how many retries.
/// Its fields ([`NodeErrorFields`]) are read and written through it as its own.
///
/// Boxed: every node call returns a `Result<Payload, NodeError>`, and the engine moves such
/// results, and the outcomes holding them, several times a call. With the ~200 bytes of fields
/// inline, each move was a `memcpy` call (~2 % of a 0.01 s run of the main job); boxed, a
/// result is the size of its payload, and only a failure pays for an allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeError(Box<NodeErrorFields>);

/// What a [`NodeError`] says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeErrorFields {
    pub kind: NodeErrorKind,
    pub message: String,
    /// Filled in by the engine.
    pub node_id: String,
    /// Filled in by the engine.
    pub node_type: String,
    /// The operation that failed (`process`, `initialize`, ...).
    pub operation: String,
    /// The run (timely epoch) the failure happened in.
    pub run: Option<u64>,
    /// The item within a batch run.
    pub item: Option<u64>,
    /// How many retries were made before giving up.
    pub retries: u32,
    /// Causes, outermost first.
    pub causes: Vec<String>,
    /// A Python traceback, for Python nodes.
    pub traceback: Option<String>,
    /// The original error object, when there is one to hand back (a Python exception).
    pub origin: Option<Origin>,
}

/// An opaque original error carried through the engine unchanged; ignored by equality.
#[derive(Clone)]
pub struct Origin(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Origin(..)")
    }
}

impl PartialEq for Origin {
    fn eq(&self, _: &Origin) -> bool {
        true
    }
}

impl Eq for Origin {}

impl std::ops::Deref for NodeError {
    type Target = NodeErrorFields;

    fn deref(&self) -> &NodeErrorFields {
        &self.0
    }
}

impl std::ops::DerefMut for NodeError {
    fn deref_mut(&mut self) -> &mut NodeErrorFields {
        &mut self.0
    }
}

impl fmt::Debug for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<NodeErrorFields> for NodeError {
    fn from(fields: NodeErrorFields) -> NodeError {
        NodeError(Box::new(fields))
    }
}

impl NodeError {
    fn with_kind(kind: NodeErrorKind, message: impl Into<String>) -> NodeError {
        NodeError::from(NodeErrorFields {
            kind,
            message: message.into(),
            node_id: String::new(),
            node_type: String::new(),
            operation: "process".into(),
            run: None,
            item: None,
            retries: 0,
            causes: Vec::new(),
            traceback: None,
            origin: None,
        })
    }

    pub fn permanent(message: impl Into<String>) -> NodeError {
        NodeError::with_kind(NodeErrorKind::Permanent, message)
    }

    pub fn transient(message: impl Into<String>) -> NodeError {
        NodeError::with_kind(NodeErrorKind::Transient, message)
    }

    pub fn invalid_input(message: impl Into<String>) -> NodeError {
        NodeError::with_kind(NodeErrorKind::InvalidInput, message)
    }

    /// A node returned a value the engine cannot pass on (a Python node's output beyond the
    /// conversion rules or limits): raised as `InputError`, like unusable input, and neutral to
    /// the circuit breaker; the message says "returned an unusable output".
    pub fn bad_output(message: impl Into<String>) -> NodeError {
        let mut e = NodeError::with_kind(NodeErrorKind::InvalidInput, message);
        e.operation = OUTPUT.into();
        e
    }

    pub fn panic(message: impl Into<String>) -> NodeError {
        NodeError::with_kind(NodeErrorKind::Panic, message)
    }

    pub fn circuit_open(message: impl Into<String>) -> NodeError {
        NodeError::with_kind(NodeErrorKind::CircuitOpen, message)
    }

    pub fn is_transient(&self) -> bool {
        self.kind == NodeErrorKind::Transient
    }

    /// The fields, unboxed, to take apart.
    pub fn into_fields(self) -> NodeErrorFields {
        *self.0
    }

    /// Attaches the node's identity; the engine calls this, nodes need not.
    pub fn at_node(mut self, node_id: &str, node_type: &str) -> NodeError {
        self.node_id = node_id.to_string();
        self.node_type = node_type.to_string();
        self
    }
}

/// The `operation` of a [`NodeError::bad_output`].
const OUTPUT: &str = "output";

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            NodeErrorKind::Panic => "panicked",
            NodeErrorKind::InvalidInput if self.operation == OUTPUT => "returned an unusable output",
            NodeErrorKind::InvalidInput => "rejected its input",
            NodeErrorKind::CircuitOpen => "failed fast (circuit open)",
            _ => "failed",
        };
        write!(f, "node '{}' ({}) {}", self.node_id, self.node_type, what)?;
        if self.operation != OUTPUT {
            write!(f, " in {}", self.operation)?;
        }
        if let Some(run) = self.run {
            write!(f, " (run {run}")?;
            if let Some(item) = self.item {
                write!(f, ", item {item}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.message)?;
        if self.retries > 0 {
            write!(f, " (after {} retries)", self.retries)?;
        }
        for c in &self.causes {
            write!(f, "\n  caused by: {c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NodeError {}

/// Any error the engine returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Node(#[from] NodeError),
    /// The data handed to a run is unusable (missing named input, wrong shape...).
    #[error("invalid input: {0}")]
    Input(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// The engine itself failed (a worker died, the pool shut down).
    #[error("engine error: {0}")]
    Engine(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

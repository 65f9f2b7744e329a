//! Manifest validation: walks the tree, collects every problem with its path (all of them, before
//! anything runs), and builds the [`Graph`] once there are none.
//!
//! Nothing here may panic on any JSON value: every lookup is checked, every index comes from the
//! tree itself, and work that could grow quadratically with hostile input (suggestions, cycle
//! search) is bounded or linear.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use serde_json::{Map, Value};

use crate::error::{ManifestError, Problem};
use crate::graph::{Graph, GraphEdge, GraphNode, RuntimeHint};
use crate::limits::{MANIFEST_EDGES, MANIFEST_NESTING, MANIFEST_NODES, MANIFEST_STRING_BYTES, MANIFEST_VALUES, WORKERS};
use crate::manifest::{nesting_problem, string_problem, values_problem};
use crate::manifest::{NodeReliability, PipelineConfig, RetryPolicy, SUPPORTED_VERSIONS};
use crate::nodes::{InputPorts, NodeType, ParamKind, ParamSpec, Params, Registry, DEFAULT_PORT};

/// Problems listed in full; beyond this a last entry counts the rest (a generated manifest with
/// thousands of bad nodes should still give a readable error).
pub const MAX_PROBLEMS: usize = 100;

/// Fields accepted at the top level of a manifest.
pub const TOP_FIELDS: &[&str] = &["version", "name", "metadata", "nodes", "edges", "outputs", "config"];
/// Fields accepted in a node.
pub const NODE_FIELDS: &[&str] = &["id", "type", "params", "runtime_hint", "reliability"];
/// Fields accepted in an edge.
pub const EDGE_FIELDS: &[&str] = &["from", "to", "output_key", "input_key"];

/// One `config` field: the table the validator, `remotemedia schema` and (through the schema) the
/// pure-Python runtime and the docs read. Its default is what `PipelineConfig::default()` holds.
pub struct ConfigField {
    pub name: &'static str,
    /// The type and range a manifest value must have.
    pub kind: ParamKind,
    /// Whether a node's own `reliability` entry may override it.
    pub per_node: bool,
    pub doc: &'static str,
}

/// Every `config` field, in the order errors list them.
pub fn config_fields() -> Vec<ConfigField> {
    let field = |name, kind, per_node, doc| ConfigField { name, kind, per_node, doc };
    let ms = |max| ParamKind::Int { min: 0, max };
    vec![
        field("enable_metrics", ParamKind::Bool, false, "collect per-node timings and counts (get_metrics())"),
        field("retry_policy", ParamKind::Choice(RetryPolicy::NAMES), true,
              "how node executions that failed with a transient error are retried; stateful nodes are not retried unless their own reliability says so"),
        field("max_retries", ParamKind::Int { min: 0, max: 100 }, true, "retries per failed execution when retry_policy is not none"),
        field("workers", ParamKind::Int { min: 1, max: WORKERS as i64 }, false, "timely workers for this pipeline's pool"),
        field("retry_base_delay_ms", ms(600_000), true, "delay before the first retry in ms; fixed waits this long every time, exponential doubles it per retry"),
        field("retry_max_delay_ms", ms(3_600_000), true, "upper bound on any retry delay in ms; at least retry_base_delay_ms"),
        field("retry_jitter", ParamKind::Bool, true, "randomise each delay (uniformly in 0..=delay) so retries of many items spread out"),
        field("circuit_breaker_threshold", ParamKind::Int { min: 0, max: 1_000_000 }, true, "consecutive failures of one node after which its circuit opens (0 turns the breaker off)"),
        field("circuit_breaker_cooldown_ms", ms(3_600_000), true, "how long an open circuit stays open before one trial item is let through, in ms"),
    ]
}

/// The names of the `config` fields (all of them, or those a node's `reliability` entry takes).
fn config_names(per_node_only: bool) -> Vec<&'static str> {
    config_fields().into_iter().filter(|f| f.per_node || !per_node_only).map(|f| f.name).collect()
}

/// The type and range of a `config` field.
fn config_kind(field: &str) -> Option<ParamKind> {
    config_fields().into_iter().find(|f| f.name == field).map(|f| f.kind)
}

/// Validates a manifest tree against the node types in `registry`.
///
/// Returns the graph, or every problem found (up to [`MAX_PROBLEMS`], then a count).
pub fn validate(tree: &Value, registry: &Registry) -> Result<Graph, ManifestError> {
    // A tree parsed from text has met these limits already (`manifest::parse_*`); one built
    // otherwise is held to them here, before anything walks it.
    if let Some(problem) = check_tree(tree) {
        return Err(ManifestError { problems: vec![problem] });
    }
    let mut p = Problems::default();
    let graph = check_manifest(&mut p, tree, registry);
    match graph {
        Some(g) if p.is_empty() => Ok(g),
        _ => {
            if p.is_empty() {
                // Defensive: every path that yields no graph records why; never report "0 problems".
                p.add("manifest", "a manifest the validator can build a graph from", "an internal inconsistency");
            }
            Err(p.finish())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Problem collection and wording

#[derive(Default)]
struct Problems {
    list: Vec<Problem>,
    omitted: usize,
}

impl Problems {
    fn add(&mut self, path: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(Problem::new(path, expected, found));
        } else {
            self.omitted += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty() && self.omitted == 0
    }

    /// No further problem will be listed: costly wording (suggestions) can be skipped.
    fn full(&self) -> bool {
        self.list.len() >= MAX_PROBLEMS
    }

    fn count(&self) -> usize {
        self.list.len() + self.omitted
    }

    fn finish(mut self) -> ManifestError {
        if self.omitted > 0 {
            let n = self.omitted;
            self.list.push(Problem::new(
                "manifest",
                format!("at most {MAX_PROBLEMS} problems listed"),
                format!("{n} more problem{} not listed", if n == 1 { "" } else { "s" }),
            ));
        }
        ManifestError { problems: self.list }
    }
}

/// Longest user text quoted in a message, in characters.
const MAX_SHOWN: usize = 60;

/// A string as a JSON literal, shortened if long (user text can be anything).
fn quote(s: &str) -> String {
    let mut shown: String = s.chars().take(MAX_SHOWN).collect();
    if shown.len() < s.len() {
        shown.push('…');
    }
    serde_json::to_string(&shown).unwrap_or_else(|_| "\"?\"".to_string())
}

/// What a value is, for the `found` half of a problem.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {}", quote(s)),
        Value::Array(a) if a.is_empty() => "an empty list".into(),
        Value::Array(a) => format!("a list of {} item{}", a.len(), if a.len() == 1 { "" } else { "s" }),
        Value::Object(m) if m.is_empty() => "an empty object".into(),
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().take(5).map(|k| quote(k)).collect();
            let more = if m.len() > 5 { ", …" } else { "" };
            format!("an object with fields {}{more}", keys.join(", "))
        }
    }
}

/// What a possibly-absent value is.
fn describe_opt(v: Option<&Value>) -> String {
    v.map(describe).unwrap_or_else(|| "nothing".into())
}

/// `base.key`, or `base["odd key"]` when the key is not a plain identifier.
fn join(base: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= MAX_SHOWN
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (base.is_empty(), plain) {
        (true, true) => key.to_string(),
        (true, false) => format!("[{}]", quote(key)),
        (false, true) => format!("{base}.{key}"),
        (false, false) => format!("{base}[{}]", quote(key)),
    }
}

/// A name as it is (no quotes), shortened if long (ids can be any text).
fn short(s: &str) -> String {
    let mut shown: String = s.chars().take(MAX_SHOWN).collect();
    if shown.len() < s.len() {
        shown.push('…');
    }
    shown
}

/// Names as a comma-separated list, shortened when there are very many.
fn list_names<S: AsRef<str>>(names: &[S]) -> String {
    const MAX: usize = 40;
    let mut s = names.iter().take(MAX).map(|n| short(n.as_ref())).collect::<Vec<_>>().join(", ");
    if names.len() > MAX {
        s.push_str(&format!(", … ({} in all)", names.len()));
    }
    s
}

/// Levenshtein distance over lowercase characters, or `None` when above `limit` (decided early
/// from the lengths, so long strings cost nothing).
fn distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[b.len()];
    (d <= limit).then_some(d)
}

/// The known name closest to `wrong`, if it is reasonably close: a few edits away (about a third
/// of the name), or containing it (`Resample` → `AudioResampleNode`).
fn closest<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Bounded so that a huge manifest with many bad names stays linear-ish.
    const MAX_CANDIDATES: usize = 2000;
    let n = wrong.chars().count();
    if n == 0 || n > 100 {
        return None;
    }
    // Short names allow fewer edits, or everything would be "close" to everything.
    let limit = match n {
        0..=3 => 1,
        4..=5 => 2,
        _ => (n / 3).max(2),
    };
    let lower = wrong.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for cand in known.into_iter().take(MAX_CANDIDATES) {
        let cand_len = cand.chars().count();
        if cand_len > 100 {
            continue;
        }
        let score = match distance(wrong, cand, limit) {
            Some(d) => Some(d),
            // A substring of at least 3 characters and a third of the name counts as close,
            // after any real near-miss.
            None if n >= 3 && n * 3 >= cand_len && cand.to_lowercase().contains(&lower) => Some(limit + 1),
            None => None,
        };
        if let Some(d) = score {
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, cand));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// ` (did you mean "x"?)` or nothing.
fn did_you_mean<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match closest(wrong, known) {
        Some(c) => format!(" (did you mean {}?)", quote(c)),
        None => String::new(),
    }
}

/// Reports every key of `obj` not in `allowed`.
fn check_fields(p: &mut Problems, base: &str, obj: &Map<String, Value>, allowed: &[&str], what: &str) {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            p.add(
                join(base, key),
                format!("one of the fields of {what}: {}{}", allowed.join(", "), did_you_mean(key, allowed.iter().copied())),
                format!("the unknown field {}", quote(key)),
            );
        }
    }
}

/// An optional section: absent and null both mean "not given".
fn section<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

// ---------------------------------------------------------------------------------------------
// Values against parameter kinds

/// An integer from a JSON number, accepting integer-valued floats such as `16000.0`
/// (YAML and Python users write those). `Err` says why not.
fn as_int(v: &Value) -> Result<i64, IntError> {
    let Value::Number(n) = v else { return Err(IntError::NotNumber) };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    if n.as_u64().is_some() {
        return Err(IntError::OutOfRange);
    }
    match n.as_f64() {
        Some(f) if !f.is_finite() => Err(IntError::NotFinite),
        Some(f) if f.fract() != 0.0 => Err(IntError::Fraction),
        // Inside i64's range the conversion is exact for integer-valued floats.
        Some(f) if (-9.2e18..=9.2e18).contains(&f) => Ok(f as i64),
        Some(_) => Err(IntError::OutOfRange),
        None => Err(IntError::NotNumber),
    }
}

enum IntError {
    NotNumber,
    NotFinite,
    Fraction,
    OutOfRange,
}

/// `found` text for a value of the wrong type, with a hint when a number was written as a string.
fn describe_mistyped(v: &Value) -> String {
    let base = describe(v);
    match v {
        Value::String(s) if s.trim().parse::<f64>().is_ok() => format!("{base} (write numbers without quotes)"),
        Value::String(s) if matches!(s.as_str(), "true" | "false") => format!("{base} (write true/false without quotes)"),
        _ => base,
    }
}

/// Checks one value against a kind; the accepted value (integers normalised) or `(expected, found)`.
fn check_value(kind: &ParamKind, v: &Value) -> Result<Value, (String, String)> {
    let expected = kind.to_string();
    match kind {
        ParamKind::Int { min, max } => match as_int(v) {
            Ok(i) if (*min..=*max).contains(&i) => Ok(Value::from(i)),
            Ok(_) | Err(IntError::OutOfRange) => Err((expected, describe(v))),
            Err(IntError::Fraction) => Err((format!("{expected} (a whole number)"), describe(v))),
            Err(IntError::NotFinite) => Err((format!("{expected} (a finite number)"), describe(v))),
            Err(IntError::NotNumber) => Err((expected, describe_mistyped(v))),
        },
        ParamKind::Float { min, max } => match v {
            Value::Number(n) => match n.as_f64() {
                Some(f) if !f.is_finite() => Err((format!("{expected} (a finite number)"), describe(v))),
                Some(f) if f >= *min && f <= *max => Ok(v.clone()),
                _ => Err((expected, describe(v))),
            },
            _ => Err((expected, describe_mistyped(v))),
        },
        ParamKind::Choice(choices) => match v {
            Value::String(s) if choices.contains(&s.as_str()) => Ok(v.clone()),
            Value::String(s) => Err((format!("{expected}{}", did_you_mean(s, choices.iter().copied())), describe(v))),
            _ => Err((expected, describe(v))),
        },
        ParamKind::IntChoice(choices) => match as_int(v) {
            Ok(i) if choices.contains(&i) => Ok(Value::from(i)),
            Err(IntError::NotNumber) => Err((expected, describe_mistyped(v))),
            _ => Err((expected, describe(v))),
        },
        ParamKind::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            _ => Err((expected, describe_mistyped(v))),
        },
        ParamKind::Any => Ok(v.clone()),
        // Structured kinds report each part's problem on its own path: see `check_kind`.
        ParamKind::List { .. } | ParamKind::Tagged { .. } => Err((expected, describe(v))),
    }
}

// ---------------------------------------------------------------------------------------------
// The manifest, section by section

/// A node as far as it could be read.
struct NodeDraft<'r> {
    id: Option<String>,
    node_type: Option<&'r NodeType>,
    params: Params,
    runtime_hint: RuntimeHint,
    reliability: Option<NodeReliability>,
}

/// An edge as far as it could be read.
struct EdgeDraft {
    from: Option<usize>,
    to: Option<usize>,
    output_key: Option<String>,
    input_key: Option<String>,
    /// The resolved input port, when the target and its ports are known.
    port: Option<String>,
    /// The port could not be resolved although the target is known.
    port_failed: bool,
}

fn check_manifest(p: &mut Problems, tree: &Value, registry: &Registry) -> Option<Graph> {
    let Value::Object(top) = tree else {
        p.add("manifest", "an object with \"version\" and \"nodes\"", describe(tree));
        return None;
    };
    check_fields(p, "", top, TOP_FIELDS, "a manifest");
    check_version(p, top.get("version"));
    if let Some(v) = section(top, "name") {
        if !v.is_string() {
            p.add("name", "a string", describe(v));
        }
    }
    if let Some(v) = section(top, "metadata") {
        if !v.is_object() {
            p.add("metadata", "an object (free-form, ignored by the engine)", describe(v));
        }
    }

    if !check_counts(p, top) {
        // Nothing is built for a manifest with too many nodes or edges: its config is still checked.
        check_config(p, section(top, "config"));
        return None;
    }
    let nodes = check_nodes(p, top.get("nodes"), registry);
    let edges = check_edges(p, section(top, "edges"), &nodes);
    check_named_ports(p, &nodes, &edges);
    check_cycles(p, &nodes, &edges);
    let outputs = check_outputs(p, section(top, "outputs"), &nodes);
    let config = check_config(p, section(top, "config"));
    check_node_delays(p, &nodes, &config);

    if !p.is_empty() {
        return None;
    }
    let mut graph = build_graph(p, nodes, edges, config)?;
    graph.declared_outputs = outputs;
    Some(graph)
}

/// At most `MANIFEST_NODES` nodes and `MANIFEST_EDGES` edges, checked before either is looked
/// at. False when there are too many.
fn check_counts(p: &mut Problems, top: &Map<String, Value>) -> bool {
    let mut ok = true;
    for (key, max) in [("nodes", MANIFEST_NODES), ("edges", MANIFEST_EDGES)] {
        if let Some(Value::Array(a)) = top.get(key) {
            if a.len() > max {
                p.add(key, format!("at most {max} {key}"), format!("a list of {} {key}", a.len()));
                ok = false;
            }
        }
    }
    ok
}

/// The manifest limits of a tree built other than by `manifest::parse_*` (which checks them
/// while it builds): values, nesting, string length, in document order, as the parsers do.
fn check_tree(tree: &Value) -> Option<Problem> {
    enum Item<'a> {
        Value(&'a Value, usize),
        Key(&'a str),
    }
    let mut values = 0usize;
    let mut stack = vec![Item::Value(tree, 0)];
    while let Some(item) = stack.pop() {
        let (v, depth) = match item {
            Item::Key(k) if k.len() > MANIFEST_STRING_BYTES => return Some(string_problem(k.len(), &head(k))),
            Item::Key(_) => continue,
            Item::Value(v, depth) => (v, depth),
        };
        values += 1;
        if values > MANIFEST_VALUES {
            return Some(values_problem("more values"));
        }
        match v {
            Value::String(s) if s.len() > MANIFEST_STRING_BYTES => return Some(string_problem(s.len(), &head(s))),
            Value::Array(a) => {
                if depth + 1 > MANIFEST_NESTING {
                    return Some(nesting_problem("manifest", depth + 1));
                }
                stack.extend(a.iter().rev().map(|x| Item::Value(x, depth + 1)));
            }
            Value::Object(m) => {
                if depth + 1 > MANIFEST_NESTING {
                    return Some(nesting_problem("manifest", depth + 1));
                }
                for (k, x) in m.iter().rev() {
                    stack.push(Item::Value(x, depth + 1));
                    stack.push(Item::Key(k));
                }
            }
            _ => {}
        }
    }
    None
}

/// The first characters of a string too long to show.
fn head(s: &str) -> String {
    s.chars().take(MAX_SHOWN).collect()
}

fn check_version(p: &mut Problems, v: Option<&Value>) {
    let expected = || {
        let versions: Vec<String> = SUPPORTED_VERSIONS.iter().map(|v| quote(v)).collect();
        format!("a supported manifest version: {}", versions.join(", "))
    };
    match v {
        Some(Value::String(s)) if SUPPORTED_VERSIONS.contains(&s.as_str()) => {}
        // YAML reads an unquoted `version: 1.0` as a number; accept it when its text matches.
        Some(Value::Number(n)) if SUPPORTED_VERSIONS.contains(&n.to_string().as_str()) => {}
        other => p.add("version", expected(), describe_opt(other)),
    }
}

fn check_nodes<'r>(p: &mut Problems, v: Option<&Value>, registry: &'r Registry) -> Vec<NodeDraft<'r>> {
    let list = match v {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => {
            p.add("nodes", "a list of at least one node", "an empty list");
            return Vec::new();
        }
        other => {
            p.add("nodes", "a list of nodes", describe_opt(other));
            return Vec::new();
        }
    };
    let type_names: Vec<&str> = registry.names().collect();
    // First occurrence of each id, to name it when the id comes again.
    let mut first: HashMap<String, usize> = HashMap::new();
    let mut drafts = Vec::with_capacity(list.len());
    for (i, node) in list.iter().enumerate() {
        let base = format!("nodes[{i}]");
        let mut d = NodeDraft { id: None, node_type: None, params: Params::new(), runtime_hint: RuntimeHint::Auto, reliability: None };
        let Value::Object(obj) = node else {
            p.add(&base, "a node object with \"id\" and \"type\"", describe(node));
            drafts.push(d);
            continue;
        };
        check_fields(p, &base, obj, NODE_FIELDS, "a node");

        match obj.get("id") {
            Some(Value::String(s)) if s.trim().is_empty() => {
                p.add(join(&base, "id"), "a non-empty node id", describe(&obj["id"]));
            }
            Some(Value::String(s)) => match first.get(s) {
                Some(&j) => p.add(
                    join(&base, "id"),
                    "a unique node id",
                    format!("{}, already the id of nodes[{j}]", quote(s)),
                ),
                None => {
                    first.insert(s.clone(), i);
                    d.id = Some(s.clone());
                }
            },
            other => p.add(join(&base, "id"), "a node id (a string)", describe_opt(other)),
        }

        match obj.get("type") {
            Some(Value::String(s)) => match registry.get(s) {
                Some(t) => d.node_type = Some(t),
                None => {
                    let guess = if p.full() { None } else { closest(s, type_names.iter().copied()) };
                    let hint = match guess {
                        Some(c) => format!("a known node type (did you mean {}?)", quote(c)),
                        None => format!("a known node type: {}", list_names(&type_names)),
                    };
                    p.add(join(&base, "type"), hint, quote(s));
                }
            },
            other => p.add(join(&base, "type"), "a node type name (a string)", describe_opt(other)),
        }

        let params_path = join(&base, "params");
        let given = match section(obj, "params") {
            None => Some(Map::new()),
            Some(Value::Object(m)) => Some(m.clone()),
            Some(other) => {
                p.add(&params_path, "an object of named params", describe(other));
                None
            }
        };
        if let (Some(t), Some(given)) = (d.node_type, given) {
            d.params = check_params(p, &params_path, t, &given);
        }

        match section(obj, "runtime_hint") {
            None => {}
            Some(Value::String(s)) if s == "auto" => d.runtime_hint = RuntimeHint::Auto,
            Some(Value::String(s)) if s == "rust" => d.runtime_hint = RuntimeHint::Rust,
            Some(Value::String(s)) if s == "python" => d.runtime_hint = RuntimeHint::Python,
            Some(other) => p.add(join(&base, "runtime_hint"), "one of \"auto\", \"rust\", \"python\"", describe(other)),
        }
        d.reliability = check_reliability(p, &join(&base, "reliability"), section(obj, "reliability"));
        drafts.push(d);
    }
    drafts
}

/// Checks a node's params against its type; returns them with defaults filled in.
///
/// Every declared param ends up present: the given value, else its default, else null (optional
/// params without a default). An explicit null for an optional param counts as not given.
fn check_params(p: &mut Problems, base: &str, t: &NodeType, given: &Map<String, Value>) -> Params {
    let before = p.count();
    let owner = Owner { name: &t.name, what: "param", open: t.open_params };
    let out = check_specs(p, base, &t.params, given, &owner);
    // The cross-param check assumes each param is individually valid.
    if p.count() == before {
        if let Some(check) = t.check {
            let result = std::panic::catch_unwind(|| check(&out));
            match result {
                Ok(found) => {
                    for (param, expected, found) in found {
                        let path = if param.is_empty() { base.to_string() } else { join(base, &param) };
                        p.add(path, expected, found);
                    }
                }
                Err(_) => p.add(base, format!("params {} can check", t.name), "params that made its check fail"),
            }
        }
    }
    out
}

/// Who declares a set of specs, for the wording of problems: a node type's params, or the
/// fields of one variant of a tagged object.
struct Owner<'a> {
    /// `GainNode`, `a "peaking" band`.
    name: &'a str,
    /// `param` or `field`.
    what: &'a str,
    /// Undeclared keys are accepted as they are (Python nodes).
    open: bool,
}

/// Checks `given` against `specs`: every problem with its path, defaults filled in.
fn check_specs(p: &mut Problems, base: &str, specs: &[ParamSpec], given: &Map<String, Value>, owner: &Owner) -> Params {
    let mut out = Params::new();
    let declared: Vec<&str> = specs.iter().map(|s| s.name).collect();
    for (key, v) in given {
        let path = join(base, key);
        match specs.iter().find(|s| s.name == key) {
            Some(spec) if v.is_null() && !spec.required => {}
            Some(spec) => {
                if let Some(norm) = check_kind(p, &path, &spec.kind, v) {
                    out.insert(key.clone(), norm);
                }
            }
            None if owner.open => {
                out.insert(key.clone(), v.clone());
            }
            None if declared.is_empty() => p.add(
                path,
                format!("no {}s ({} takes none)", owner.what, owner.name),
                format!("the unknown {} {}", owner.what, quote(key)),
            ),
            None => p.add(
                path,
                format!("a {} of {}: {}{}", owner.what, owner.name, declared.join(", "), did_you_mean(key, declared.iter().copied())),
                format!("the unknown {} {}", owner.what, quote(key)),
            ),
        }
    }
    for spec in specs {
        let absent = given.get(spec.name).is_none_or(|v| v.is_null() && !spec.required);
        if !absent {
            continue;
        }
        if spec.required {
            p.add(join(base, spec.name), format!("{} (required by {})", spec.kind, owner.name), "nothing");
        } else {
            out.insert(spec.name.to_string(), spec.default.clone().unwrap_or(Value::Null));
        }
    }
    out
}

/// Checks a value against a kind, adding every problem (with its path) to `p`; the accepted value,
/// normalised (integer-valued floats as integers, a tagged object's defaults filled in).
fn check_kind(p: &mut Problems, path: &str, kind: &ParamKind, v: &Value) -> Option<Value> {
    match kind {
        ParamKind::List { item, min_len, max_len } => {
            let items = match v {
                Value::Array(items) if (*min_len..=*max_len).contains(&items.len()) => items,
                Value::Array(_) => {
                    p.add(path, kind.to_string(), describe(v));
                    return None;
                }
                _ => {
                    p.add(path, kind.to_string(), describe_mistyped(v));
                    return None;
                }
            };
            let before = p.count();
            let out: Vec<Value> =
                items.iter().enumerate().filter_map(|(i, x)| check_kind(p, &format!("{path}[{i}]"), item, x)).collect();
            (p.count() == before).then_some(Value::Array(out))
        }
        ParamKind::Tagged { tag, variants } => {
            let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
            let Value::Object(obj) = v else {
                p.add(path, kind.to_string(), describe(v));
                return None;
            };
            let tag_path = join(path, tag);
            let variant = match obj.get(*tag) {
                Some(Value::String(s)) => match variants.iter().find(|v| v.name == s) {
                    Some(variant) => variant,
                    None => {
                        p.add(tag_path, format!("one of {}{}", names.join(", "), did_you_mean(s, names.iter().copied())), quote(s));
                        return None;
                    }
                },
                other => {
                    p.add(tag_path, format!("one of {}", names.join(", ")), describe_opt(other));
                    return None;
                }
            };
            let before = p.count();
            let name = format!("{tag} {}", quote(variant.name));
            let mut fields = obj.clone();
            fields.remove(*tag);
            let mut out = check_specs(p, path, &variant.fields, &fields, &Owner { name: &name, what: "field", open: false });
            for (a, b) in &variant.increasing {
                if let (Some(x), Some(y)) = (out.get(*a).and_then(Value::as_f64), out.get(*b).and_then(Value::as_f64)) {
                    if x >= y {
                        p.add(join(path, b), format!("a number above {a} ({})", Value::from(x)), Value::from(y).to_string());
                    }
                }
            }
            out.insert(tag.to_string(), Value::from(variant.name));
            (p.count() == before).then_some(Value::Object(out))
        }
        scalar => match check_value(scalar, v) {
            Ok(norm) => Some(norm),
            Err((expected, found)) => {
                p.add(path, expected, found);
                None
            }
        },
    }
}

/// Reads an endpoint (`from`/`to`) of an edge: the index of the node it names.
fn check_endpoint(
    p: &mut Problems,
    path: String,
    v: Option<&Value>,
    ids: &HashMap<&str, usize>,
    id_list: &[&str],
) -> Option<usize> {
    match v {
        Some(Value::String(s)) => match ids.get(s.as_str()) {
            Some(&i) => Some(i),
            None => {
                let guess = if p.full() { None } else { closest(s, id_list.iter().copied()) };
                let expected = match guess {
                    Some(c) => format!("the id of a node (did you mean {}?)", quote(c)),
                    None => format!("the id of a node: {}", list_names(id_list)),
                };
                p.add(path, expected, format!("{}, which is no node's id", quote(s)));
                None
            }
        },
        other => {
            p.add(path, "the id of a node (a string)", describe_opt(other));
            None
        }
    }
}

/// Reads an optional key (`output_key`/`input_key`): absent, or a non-empty string.
fn check_key(p: &mut Problems, path: String, v: Option<&Value>) -> Result<Option<String>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(other) => {
            p.add(path, "a non-empty string", describe(other));
            Err(())
        }
    }
}

fn check_edges(p: &mut Problems, v: Option<&Value>, nodes: &[NodeDraft]) -> Vec<EdgeDraft> {
    let list = match v {
        None => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            p.add("edges", "a list of edges", describe(other));
            return Vec::new();
        }
    };
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(id) = &n.id {
            ids.entry(id.as_str()).or_insert(i);
        }
    }
    let id_list: Vec<&str> = nodes.iter().filter_map(|n| n.id.as_deref()).collect();
    let mut drafts = Vec::with_capacity(list.len());
    // Edges already seen, by their exact description, and ports already fed, by (node, port).
    let mut seen: HashMap<(usize, usize, Option<String>, Option<String>), usize> = HashMap::new();
    let mut fed: HashMap<(usize, String), usize> = HashMap::new();
    for (j, edge) in list.iter().enumerate() {
        let base = format!("edges[{j}]");
        let mut d = EdgeDraft { from: None, to: None, output_key: None, input_key: None, port: None, port_failed: false };
        let Value::Object(obj) = edge else {
            p.add(&base, "an edge object with \"from\" and \"to\"", describe(edge));
            drafts.push(d);
            continue;
        };
        check_fields(p, &base, obj, EDGE_FIELDS, "an edge");
        d.from = check_endpoint(p, join(&base, "from"), obj.get("from"), &ids, &id_list);
        d.to = check_endpoint(p, join(&base, "to"), obj.get("to"), &ids, &id_list);
        let output_key = check_key(p, join(&base, "output_key"), obj.get("output_key"));
        let input_key = check_key(p, join(&base, "input_key"), obj.get("input_key"));
        d.output_key = output_key.clone().unwrap_or(None);
        d.input_key = input_key.clone().unwrap_or(None);

        // The source must produce the named output.
        if let (Some(f), Some(key)) = (d.from, &d.output_key) {
            if let Some(t) = nodes[f].node_type {
                if !t.open_outputs && !t.outputs.iter().any(|o| o == key) {
                    let src = quote(nodes[f].id.as_deref().unwrap_or(""));
                    let expected = if t.outputs.is_empty() {
                        format!("no output_key ({} {src} has one whole output)", t.name)
                    } else {
                        format!(
                            "an output of {} {src}: {}{}",
                            t.name,
                            t.outputs.join(", "),
                            did_you_mean(key, t.outputs.iter().map(|s| s.as_str()))
                        )
                    };
                    p.add(join(&base, "output_key"), expected, quote(key));
                }
            }
        }

        // Resolve the input port on the target.
        if let (Some(to), Ok(input_key)) = (d.to, &input_key) {
            if let Some(t) = nodes[to].node_type {
                let target = quote(nodes[to].id.as_deref().unwrap_or(""));
                let key_path = join(&base, "input_key");
                match &t.inputs {
                    InputPorts::One => match input_key.as_deref() {
                        None | Some(DEFAULT_PORT) => d.port = Some(DEFAULT_PORT.to_string()),
                        Some(k) => p.add(
                            key_path,
                            format!("no input_key, or \"{DEFAULT_PORT}\" ({} {target} has a single input)", t.name),
                            quote(k),
                        ),
                    },
                    InputPorts::Named(ports) => match input_key {
                        Some(k) if ports.iter().any(|x| x == k) => d.port = Some(k.clone()),
                        None if ports.len() == 1 => d.port = Some(ports[0].clone()),
                        _ if ports.is_empty() => p.add(
                            join(&base, "to"),
                            format!("a node with inputs ({} {target} takes none)", t.name),
                            quote(nodes[to].id.as_deref().unwrap_or("")),
                        ),
                        Some(k) => p.add(
                            key_path,
                            format!(
                                "an input port of {} {target}: {}{}",
                                t.name,
                                ports.join(", "),
                                did_you_mean(k, ports.iter().map(|s| s.as_str()))
                            ),
                            quote(k),
                        ),
                        None => p.add(
                            key_path,
                            format!("an input_key naming an input port of {} {target}: {}", t.name, ports.join(", ")),
                            "nothing",
                        ),
                    },
                    InputPorts::Any => match (input_key, d.from) {
                        (Some(k), _) => d.port = Some(k.clone()),
                        (None, Some(f)) => d.port = nodes[f].id.clone(),
                        // The source is already reported; the port cannot be known.
                        (None, None) => {}
                    },
                }
                d.port_failed = d.port.is_none();
            }
        }

        // The same edge twice, then two edges into one port.
        let mut repeated = false;
        if let (Some(f), Some(to)) = (d.from, d.to) {
            let key = (f, to, d.output_key.clone(), d.input_key.clone());
            if let Some(&first) = seen.get(&key) {
                p.add(&base, "each edge listed once", format!("a repeat of edges[{first}]"));
                repeated = true;
            } else {
                seen.insert(key, j);
            }
        }
        if let (false, Some(to), Some(port)) = (repeated, d.to, &d.port) {
            if let Some(&first) = fed.get(&(to, port.clone())) {
                if let Some(t) = nodes[to].node_type {
                    let target = quote(nodes[to].id.as_deref().unwrap_or(""));
                    match &t.inputs {
                        InputPorts::One => p.add(
                            join(&base, "to"),
                            format!(
                                "a node with a free input ({} {target} takes one input, already fed by edges[{first}]; combine inputs with a MixNode)",
                                t.name
                            ),
                            format!("a second edge into {target}"),
                        ),
                        _ => {
                            let path = if d.input_key.is_some() { join(&base, "input_key") } else { base.clone() };
                            let hint = if d.input_key.is_none() && t.inputs == InputPorts::Any {
                                "; give each edge its own input_key"
                            } else {
                                ""
                            };
                            p.add(
                                path,
                                format!("one edge per input port (edges[{first}] already feeds it{hint})"),
                                format!("a second edge into port {} of {target}", quote(port)),
                            );
                        }
                    }
                }
            } else {
                fed.insert((to, port.clone()), j);
            }
        }
        drafts.push(d);
    }
    drafts
}

/// Every port of a node with named ports must be fed (unless an edge into it is already reported).
fn check_named_ports(p: &mut Problems, nodes: &[NodeDraft], edges: &[EdgeDraft]) {
    let mut ports_fed: Vec<HashSet<&str>> = vec![HashSet::new(); nodes.len()];
    let mut failed = vec![false; nodes.len()];
    for e in edges {
        if let Some(to) = e.to {
            if let Some(port) = &e.port {
                ports_fed[to].insert(port.as_str());
            }
            failed[to] |= e.port_failed;
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        let Some(t) = n.node_type else { continue };
        let InputPorts::Named(ports) = &t.inputs else { continue };
        if failed[i] {
            continue;
        }
        let missing: Vec<String> = ports.iter().filter(|x| !ports_fed[i].contains(x.as_str())).map(|x| quote(x)).collect();
        if !missing.is_empty() {
            p.add(
                format!("nodes[{i}]"),
                format!("an edge into every input port of {}: {}", t.name, ports.join(", ")),
                format!("no edge into {}", missing.join(", ")),
            );
        }
    }
}

/// Nodes of a cycle named in its problem; the others are counted.
const CYCLE_SHOWN: usize = 8;

/// Reports each cycle (one per strongly connected component), naming its nodes in order.
fn check_cycles(p: &mut Problems, nodes: &[NodeDraft], edges: &[EdgeDraft]) {
    let n = nodes.len();
    // Outgoing (edge index, target) lists in manifest order.
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (j, e) in edges.iter().enumerate() {
        if let (Some(f), Some(t)) = (e.from, e.to) {
            out[f].push((j, t));
        }
    }
    let comp = strongly_connected(&out);
    let mut size = vec![0usize; n];
    for &c in &comp {
        size[c] += 1;
    }
    let name = |i: usize| nodes[i].id.clone().unwrap_or_else(|| format!("nodes[{i}]"));
    let mut reported = vec![false; n];
    for start in 0..n {
        let c = comp[start];
        if reported[c] {
            continue;
        }
        let self_loop = out[start].iter().find(|&&(_, t)| t == start).map(|&(j, _)| j);
        if size[c] == 1 && self_loop.is_none() {
            continue;
        }
        reported[c] = true;
        // The shortest way back to `start` inside its component, by breadth-first search.
        let (closing, path) = match self_loop {
            Some(j) => (j, vec![start]),
            None => match shortest_cycle(start, &out, &comp) {
                Some(found) => found,
                None => continue,
            },
        };
        // A long cycle names its first nodes and counts the rest (a 100,000-node cycle once
        // made a 989 KB message).
        let mut names: Vec<String> = path.iter().take(CYCLE_SHOWN).map(|&i| short(&name(i))).collect();
        if path.len() > CYCLE_SHOWN {
            names.push(format!("… ({} more)", path.len() - CYCLE_SHOWN));
        }
        names.push(short(&name(start)));
        p.add(
            format!("edges[{closing}]"),
            "a graph without cycles (data must flow from the inputs to the outputs)",
            format!("the cycle {}", names.join(" -> ")),
        );
    }
}

/// The component number of each node (Tarjan's algorithm, iterative: manifests can be long).
fn strongly_connected(out: &[Vec<(usize, usize)>]) -> Vec<usize> {
    let n = out.len();
    const UNSEEN: usize = usize::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![UNSEEN; n];
    let mut next_index = 0;
    let mut next_comp = 0;
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        // (node, position in its edge list)
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if let Some(&(_, w)) = out[v].get(*pos) {
                *pos += 1;
                if index[w] == UNSEEN {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp[w] = next_comp;
                        if w == v {
                            break;
                        }
                    }
                    next_comp += 1;
                }
            }
        }
    }
    comp
}

/// The closing edge and the nodes of a shortest cycle through `start` within its component.
fn shortest_cycle(start: usize, out: &[Vec<(usize, usize)>], comp: &[usize]) -> Option<(usize, Vec<usize>)> {
    let c = comp[start];
    let mut prev: HashMap<usize, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &(j, w) in &out[v] {
            if comp[w] != c {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                let mut at = v;
                while at != start {
                    at = *prev.get(&at)?;
                    path.push(at);
                }
                path.reverse();
                return Some((j, path));
            }
            if w != start && !prev.contains_key(&w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    None
}

/// The manifest's `outputs`: node ids, each listed once; the node indices, or `None` when the
/// section is absent (the sinks are then the outputs) or has problems.
fn check_outputs(p: &mut Problems, v: Option<&Value>, nodes: &[NodeDraft]) -> Option<Vec<usize>> {
    let list = match v? {
        Value::Array(a) if !a.is_empty() => a,
        Value::Array(_) => {
            p.add("outputs", "a list of at least one node id (or no outputs section: the sinks are the outputs)", "an empty list");
            return None;
        }
        other => {
            p.add("outputs", "a list of node ids (the nodes whose outputs a run returns)", describe(other));
            return None;
        }
    };
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(id) = &n.id {
            ids.entry(id.as_str()).or_insert(i);
        }
    }
    let id_list: Vec<&str> = nodes.iter().filter_map(|n| n.id.as_deref()).collect();
    let mut first: HashMap<usize, usize> = HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    let before = p.count();
    for (k, entry) in list.iter().enumerate() {
        let path = format!("outputs[{k}]");
        let Some(node) = check_endpoint(p, path.clone(), Some(entry), &ids, &id_list) else { continue };
        match first.get(&node) {
            Some(&j) => p.add(path, "each node listed once", format!("{}, already outputs[{j}]", quote(entry.as_str().unwrap_or("")))),
            None => {
                first.insert(node, k);
                out.push(node);
            }
        }
    }
    (p.count() == before).then_some(out)
}

fn check_config(p: &mut Problems, v: Option<&Value>) -> PipelineConfig {
    let obj = match v {
        None => return PipelineConfig::default(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            p.add("config", "an object of settings", describe(other));
            return PipelineConfig::default();
        }
    };
    check_fields(p, "config", obj, &config_names(false), "config");
    let c: PipelineConfig = checked_fields(p, "config", obj, |_| true);
    if c.retry_max_delay_ms < c.retry_base_delay_ms {
        p.add(
            "config.retry_max_delay_ms",
            format!("at least retry_base_delay_ms ({})", c.retry_base_delay_ms),
            c.retry_max_delay_ms.to_string(),
        );
    }
    c
}

/// A node's `reliability` entry: the same kinds and ranges as the `config` fields of that name.
fn check_reliability(p: &mut Problems, base: &str, v: Option<&Value>) -> Option<NodeReliability> {
    let obj = match v? {
        Value::Object(m) => m,
        other => {
            p.add(base, "an object of retry and circuit-breaker settings", describe(other));
            return None;
        }
    };
    let reliability_fields = config_names(true);
    check_fields(p, base, obj, &reliability_fields, "a node's reliability settings");
    Some(checked_fields(p, base, obj, |key| reliability_fields.contains(&key)))
}

/// The `config` fields of `obj` that `wanted` names, each checked against its kind and range
/// (a problem for each that fails), as `T` (the config or a node's reliability settings) with
/// the fields left out, null or failed at their defaults.
fn checked_fields<T: serde::de::DeserializeOwned + Default>(
    p: &mut Problems,
    base: &str,
    obj: &Map<String, Value>,
    wanted: impl Fn(&str) -> bool,
) -> T {
    let mut checked = Map::new();
    for (key, v) in obj {
        let Some(kind) = config_kind(key).filter(|_| wanted(key) && !v.is_null()) else { continue };
        match check_value(&kind, v) {
            Ok(value) => {
                checked.insert(key.clone(), value);
            }
            Err((expected, found)) => p.add(join(base, key), expected, found),
        }
    }
    // check_value has enforced every kind and range, so the checked fields always deserialize.
    serde_json::from_value(Value::Object(checked)).unwrap_or_default()
}

/// A node that sets either retry delay must end up with a maximum at least its base, counting
/// the pipeline's value for the one it leaves out.
fn check_node_delays(p: &mut Problems, nodes: &[NodeDraft], config: &PipelineConfig) {
    for (i, d) in nodes.iter().enumerate() {
        let Some(r) = &d.reliability else { continue };
        if r.retry_base_delay_ms.is_none() && r.retry_max_delay_ms.is_none() {
            continue;
        }
        let base = r.retry_base_delay_ms.unwrap_or(config.retry_base_delay_ms);
        let max = r.retry_max_delay_ms.unwrap_or(config.retry_max_delay_ms);
        if max < base {
            p.add(
                format!("nodes[{i}].reliability.retry_max_delay_ms"),
                format!("at least retry_base_delay_ms ({base})"),
                max.to_string(),
            );
        }
    }
}

/// Assembles the graph from drafts that have no problems left.
fn build_graph(p: &mut Problems, nodes: Vec<NodeDraft>, edges: Vec<EdgeDraft>, config: PipelineConfig) -> Option<Graph> {
    let mut graph_nodes = Vec::with_capacity(nodes.len());
    for d in nodes {
        graph_nodes.push(GraphNode {
            id: d.id?,
            node_type: d.node_type?.into(),
            params: d.params,
            runtime_hint: d.runtime_hint,
            reliability: d.reliability,
            inputs: Vec::new(),
            outputs: Vec::new(),
        });
    }
    let mut graph_edges = Vec::with_capacity(edges.len());
    for (j, d) in edges.into_iter().enumerate() {
        let (from, to, port) = (d.from?, d.to?, d.port?);
        graph_nodes.get_mut(from)?.outputs.push(j);
        graph_nodes.get_mut(to)?.inputs.push(j);
        graph_edges.push(GraphEdge { from, to, output_key: d.output_key, port });
    }
    let order = topological_order(&graph_nodes, &graph_edges);
    if order.len() != graph_nodes.len() {
        p.add("edges", "a graph without cycles", "a cycle the cycle check missed");
        return None;
    }
    Some(Graph { nodes: graph_nodes, edges: graph_edges, order, config, declared_outputs: None })
}

/// Kahn's algorithm, always taking the ready node that comes first in the manifest, so the order
/// depends only on the manifest (every worker must build operators in the same order).
fn topological_order(nodes: &[GraphNode], edges: &[GraphEdge]) -> Vec<usize> {
    let mut indegree: Vec<usize> = nodes.iter().map(|n| n.inputs.len()).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..nodes.len()).filter(|&i| indegree[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &e in &nodes[i].outputs {
            let to = edges[e].to;
            indegree[to] -= 1;
            if indegree[to] == 0 {
                ready.push(Reverse(to));
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names() {
        let known = ["AudioResampleNode", "VADNode", "GainNode", "MixNode"];
        assert_eq!(closest("AudioResampler", known), Some("AudioResampleNode"));
        assert_eq!(closest("audioresamplenode", known), Some("AudioResampleNode"));
        assert_eq!(closest("Resample", known), Some("AudioResampleNode"));
        assert_eq!(closest("GainNod", known), Some("GainNode"));
        assert_eq!(closest("Transcriber", known), None);
        assert_eq!(closest("VAD", known), Some("VADNode"));
        assert_eq!(closest("tod", ["vad"]), None);
        assert_eq!(closest("txt", ["audio", "text"]), Some("text"));
        assert_eq!(closest("expo", ["none", "fixed", "exponential"]), Some("exponential"));
        assert_eq!(closest("", known), None);
    }

    #[test]
    fn cycle_components() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3
        let out = vec![vec![(0, 1)], vec![(1, 2)], vec![(2, 0), (3, 3)], vec![]];
        let comp = strongly_connected(&out);
        assert_eq!(comp[0], comp[1]);
        assert_eq!(comp[1], comp[2]);
        assert_ne!(comp[2], comp[3]);
        let (closing, path) = shortest_cycle(0, &out, &comp).unwrap();
        assert_eq!(closing, 2);
        assert_eq!(path, vec![0, 1, 2]);
    }
}

//! Manifest validation: one test per problem class (exact path, key words of the message), all
//! problems reported at once, JSON/YAML text and files, syntax errors with their location, the
//! `to_manifest` round trip, and deterministic topological orders.

use remotemedia::error::{ManifestError, NodeError, Problem};
use remotemedia::graph::{Graph, RuntimeHint};
use remotemedia::manifest::{self, to_manifest, validate, RetryPolicy};
use remotemedia::nodes::{InputPorts, NodeType, ParamKind, ParamSpec, Params, Registry};
use remotemedia::Error;
use serde_json::{json, Value};

fn unbuilt(name: &str, doc: &str) -> NodeType {
    // Validation never builds nodes; a factory that fails keeps these types honest about that.
    NodeType::new(name, doc, |_| Err(NodeError::permanent("test type, not buildable")))
}

/// `max_rate`, when given, must be at least `rate`.
fn rate_check(params: &Params) -> Vec<(String, String, String)> {
    let rate = params.get("rate").and_then(Value::as_i64).unwrap_or(0);
    match params.get("max_rate").and_then(Value::as_i64) {
        Some(max) if max < rate => vec![("max_rate".into(), format!("at least rate ({rate})"), max.to_string())],
        _ => vec![],
    }
}

/// The built-in types plus test-local ones covering every port and param shape.
fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register(NodeType {
        inputs: InputPorts::Named(vec!["audio".into(), "text".into()]),
        ..unbuilt("CaptionNode", "two named inputs")
    });
    r.register(NodeType { inputs: InputPorts::Named(vec!["audio".into()]), ..unbuilt("SinkNode", "one named input") });
    r.register(NodeType {
        params: vec![
            ParamSpec::required("rate", ParamKind::Int { min: 8000, max: 48000 }, "Hz"),
            ParamSpec::with_default("mode", ParamKind::Choice(&["fast", "slow"]), json!("fast"), "speed"),
            ParamSpec::with_default("threshold", ParamKind::Float { min: 0.0, max: 1.0 }, json!(0.5), "level"),
            ParamSpec::with_default("frame_ms", ParamKind::IntChoice(&[10, 20, 30]), json!(20), "frame"),
            ParamSpec::with_default("enabled", ParamKind::Bool, json!(true), "on/off"),
            ParamSpec::optional("max_rate", ParamKind::Int { min: 8000, max: 192000 }, "Hz"),
            ParamSpec::optional("label", ParamKind::Any, "anything"),
        ],
        check: Some(rate_check),
        ..unbuilt("ConfigNode", "every param kind")
    });
    r.register(NodeType {
        outputs: vec!["audio".into(), "segments".into(), "frames".into()],
        ..unbuilt("SplitNode", "named outputs")
    });
    r.register(NodeType {
        open_params: true,
        open_outputs: true,
        params: vec![ParamSpec::optional("model", ParamKind::Choice(&["tiny", "base"]), "model size")],
        ..unbuilt("PyNode", "a Python-style node")
    });
    r
}

fn manifest(nodes: Value, edges: Value) -> Value {
    json!({ "version": "1.0", "nodes": nodes, "edges": edges })
}

fn problems(tree: &Value) -> Vec<Problem> {
    match validate(tree, &registry()) {
        Ok(g) => panic!("expected problems, got a graph of {} nodes", g.nodes.len()),
        Err(e) => {
            assert!(!e.problems.is_empty());
            e.problems
        }
    }
}

/// The only problem of a manifest, with its display text.
fn only(tree: &Value) -> (Problem, String) {
    let ps = problems(tree);
    assert_eq!(ps.len(), 1, "expected one problem, got {ps:#?}");
    let text = ps[0].to_string();
    (ps[0].clone(), text)
}

fn graph(tree: &Value) -> Graph {
    match validate(tree, &registry()) {
        Ok(g) => g,
        Err(e) => panic!("expected a graph, got {e}"),
    }
}

fn has(text: &str, words: &[&str]) {
    for w in words {
        assert!(text.contains(w), "{text:?} should contain {w:?}");
    }
}

fn gain(id: &str) -> Value {
    json!({ "id": id, "type": "GainNode" })
}

fn pass(id: &str) -> Value {
    json!({ "id": id, "type": "PassthroughNode" })
}

fn edge(from: &str, to: &str) -> Value {
    json!({ "from": from, "to": to })
}

// ---- top level ----------------------------------------------------------------------------------

#[test]
fn top_level_must_be_an_object() {
    for tree in [json!([1, 2]), json!("nodes"), json!(null), json!(3.5)] {
        let (p, text) = only(&tree);
        assert_eq!(p.path, "manifest");
        has(&text, &["expected an object"]);
    }
    let (_, text) = only(&json!([1, 2]));
    has(&text, &["found a list of 2 items"]);
}

#[test]
fn version_missing_or_unsupported() {
    let (p, text) = only(&json!({ "nodes": [gain("g")] }));
    assert_eq!(p.path, "version");
    assert_eq!(p.found, "nothing");
    has(&text, &["supported manifest version", "\"1.0\""]);

    let (p, text) = only(&json!({ "version": "2.0", "nodes": [gain("g")] }));
    assert_eq!(p.path, "version");
    has(&text, &["found the string \"2.0\""]);

    let (p, _) = only(&json!({ "version": 2, "nodes": [gain("g")] }));
    assert_eq!(p.path, "version");

    // YAML reads an unquoted 1.0 as a number: accepted.
    let tree = manifest::parse_yaml("version: 1.0\nnodes:\n  - {id: g, type: GainNode}\n").unwrap();
    assert!(tree["version"].is_number());
    graph(&tree);
}

#[test]
fn nodes_missing_not_a_list_or_empty() {
    let (p, text) = only(&json!({ "version": "1.0" }));
    assert_eq!(p.path, "nodes");
    has(&text, &["expected a list of nodes", "found nothing"]);

    let (p, text) = only(&json!({ "version": "1.0", "nodes": { "id": "g" } }));
    assert_eq!(p.path, "nodes");
    has(&text, &["an object with fields \"id\""]);

    let (p, text) = only(&json!({ "version": "1.0", "nodes": [] }));
    assert_eq!(p.path, "nodes");
    has(&text, &["at least one node", "an empty list"]);

    let (p, text) = only(&manifest(json!([gain("g"), 7]), json!([])));
    assert_eq!(p.path, "nodes[1]");
    has(&text, &["node object", "found 7"]);
}

#[test]
fn name_and_metadata_are_optional() {
    let mut m = manifest(json!([gain("g")]), json!([]));
    m["name"] = json!("demo");
    m["metadata"] = json!({ "owner": "me", "tags": [1, 2] });
    graph(&m);
    m["name"] = json!(5);
    m["metadata"] = json!("x");
    let ps = problems(&m);
    let paths: Vec<&str> = ps.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["name", "metadata"]);
}

// ---- unknown fields -------------------------------------------------------------------------------

#[test]
fn unknown_fields_at_every_level() {
    let mut m = manifest(json!([gain("g")]), json!([]));
    m["edgse"] = json!([]);
    let (p, text) = only(&m);
    assert_eq!(p.path, "edgse");
    has(&text, &["one of the fields of a manifest: version, name, metadata, nodes, edges, outputs, config", "did you mean \"edges\"", "found the unknown field \"edgse\""]);

    let (p, text) = only(&manifest(json!([{ "id": "g", "type": "GainNode", "parmas": {} }]), json!([])));
    assert_eq!(p.path, "nodes[0].parmas");
    has(&text, &["id, type, params, runtime_hint", "did you mean \"params\""]);

    let (p, text) = only(&manifest(json!([pass("a"), pass("b")]), json!([{ "from": "a", "to": "b", "port": "in" }])));
    assert_eq!(p.path, "edges[0].port");
    has(&text, &["from, to, output_key, input_key", "the unknown field \"port\""]);

    let mut m = manifest(json!([gain("g")]), json!([]));
    m["config"] = json!({ "worker": 2 });
    let (p, text) = only(&m);
    assert_eq!(p.path, "config.worker");
    has(&text, &["did you mean \"workers\"", "retry_policy", "circuit_breaker_cooldown_ms"]);

    // Odd keys are quoted in the path.
    let mut m = manifest(json!([gain("g")]), json!([]));
    m["my field"] = json!(1);
    let (p, _) = only(&m);
    assert_eq!(p.path, "[\"my field\"]");
}

// ---- node ids and types ---------------------------------------------------------------------------

#[test]
fn node_id_missing_not_a_string_empty_or_duplicate() {
    let (p, text) = only(&manifest(json!([{ "type": "GainNode" }]), json!([])));
    assert_eq!(p.path, "nodes[0].id");
    has(&text, &["node id", "found nothing"]);

    let (p, text) = only(&manifest(json!([{ "id": 3, "type": "GainNode" }]), json!([])));
    assert_eq!(p.path, "nodes[0].id");
    has(&text, &["found 3"]);

    let (p, text) = only(&manifest(json!([{ "id": "", "type": "GainNode" }]), json!([])));
    assert_eq!(p.path, "nodes[0].id");
    has(&text, &["non-empty"]);

    let (p, text) = only(&manifest(json!([gain("g"), gain("h"), gain("g")]), json!([])));
    assert_eq!(p.path, "nodes[2].id");
    has(&text, &["unique node id", "\"g\", already the id of nodes[0]"]);
}

#[test]
fn unknown_node_type_suggests_the_closest_name() {
    let (p, text) = only(&manifest(json!([{ "id": "r", "type": "AudioResampler" }]), json!([])));
    assert_eq!(p.path, "nodes[0].type");
    has(&text, &["did you mean \"AudioResampleNode\"?", "found \"AudioResampler\""]);

    let (_, text) = only(&manifest(json!([{ "id": "g", "type": "gainnode" }]), json!([])));
    has(&text, &["did you mean \"GainNode\"?"]);

    // Nothing close: no guess, the known names instead.
    let (p, text) = only(&manifest(json!([{ "id": "t", "type": "Transcriber" }]), json!([])));
    assert_eq!(p.path, "nodes[0].type");
    assert!(!text.contains("did you mean"), "{text}");
    has(&text, &["known node type: ", "GainNode", "MixNode"]);

    let (p, text) = only(&manifest(json!([{ "id": "t" }]), json!([])));
    assert_eq!(p.path, "nodes[0].type");
    has(&text, &["found nothing"]);
}

#[test]
fn runtime_hint_must_be_auto_rust_or_python() {
    let (p, text) = only(&manifest(json!([{ "id": "g", "type": "GainNode", "runtime_hint": "gpu" }]), json!([])));
    assert_eq!(p.path, "nodes[0].runtime_hint");
    has(&text, &["\"auto\", \"rust\", \"python\"", "found the string \"gpu\""]);
    let g = graph(&manifest(json!([{ "id": "g", "type": "GainNode", "runtime_hint": "python" }]), json!([])));
    assert_eq!(g.nodes[0].runtime_hint, RuntimeHint::Python);
    assert_eq!(graph(&manifest(json!([gain("g")]), json!([]))).nodes[0].runtime_hint, RuntimeHint::Auto);
}

// ---- params -------------------------------------------------------------------------------------

fn with_params(ty: &str, params: Value) -> Value {
    manifest(json!([{ "id": "n", "type": ty, "params": params }]), json!([]))
}

#[test]
fn params_must_be_an_object() {
    let (p, text) = only(&with_params("GainNode", json!([6])));
    assert_eq!(p.path, "nodes[0].params");
    has(&text, &["object of named params", "a list of 1 item"]);
}

#[test]
fn unknown_param_suggests_the_closest() {
    let (p, text) = only(&with_params("GainNode", json!({ "gain": 6 })));
    assert_eq!(p.path, "nodes[0].params.gain");
    has(&text, &["a param of GainNode: gain_db", "did you mean \"gain_db\"?", "the unknown param \"gain\""]);

    let (p, text) = only(&with_params("PassthroughNode", json!({ "x": 1 })));
    assert_eq!(p.path, "nodes[0].params.x");
    has(&text, &["no params (PassthroughNode takes none)"]);
}

#[test]
fn missing_required_param() {
    let (p, text) = only(&with_params("ConfigNode", json!({})));
    assert_eq!(p.path, "nodes[0].params.rate");
    assert_eq!(p.found, "nothing");
    has(&text, &["an integer from 8000 to 48000 (required by ConfigNode)"]);
    // An explicit null does not count as giving it.
    let (p, text) = only(&with_params("ConfigNode", json!({ "rate": null })));
    assert_eq!(p.path, "nodes[0].params.rate");
    has(&text, &["found null"]);
}

#[test]
fn ill_typed_params() {
    let (p, text) = only(&with_params("GainNode", json!({ "gain_db": "6" })));
    assert_eq!(p.path, "nodes[0].params.gain_db");
    has(&text, &["a number from -120 to 60", "the string \"6\"", "without quotes"]);

    let (p, text) = only(&with_params("ConfigNode", json!({ "rate": 16000, "enabled": "true" })));
    assert_eq!(p.path, "nodes[0].params.enabled");
    has(&text, &["true or false", "without quotes"]);

    let (p, text) = only(&with_params("ConfigNode", json!({ "rate": [16000] })));
    assert_eq!(p.path, "nodes[0].params.rate");
    has(&text, &["an integer", "a list of 1 item"]);

    let (p, text) = only(&with_params("ConfigNode", json!({ "rate": 16000.5 })));
    assert_eq!(p.path, "nodes[0].params.rate");
    has(&text, &["whole number", "found 16000.5"]);
}

#[test]
fn out_of_range_params() {
    let (p, text) = only(&with_params("GainNode", json!({ "gain_db": 100 })));
    assert_eq!(p.path, "nodes[0].params.gain_db");
    has(&text, &["expected a number from -120 to 60, found 100"]);

    let (p, text) = only(&with_params("ConfigNode", json!({ "rate": 4000 })));
    assert_eq!(p.path, "nodes[0].params.rate");
    has(&text, &["expected an integer from 8000 to 48000, found 4000"]);

    let (_, text) = only(&with_params("ConfigNode", json!({ "rate": 18446744073709551615u64 })));
    has(&text, &["found 18446744073709551615"]);

    let (_, text) = only(&with_params("ConfigNode", json!({ "rate": 1e300 })));
    has(&text, &["an integer from 8000 to 48000"]);
}

#[test]
fn params_not_in_choices() {
    let (p, text) = only(&with_params("ConfigNode", json!({ "rate": 16000, "mode": "Fast" })));
    assert_eq!(p.path, "nodes[0].params.mode");
    has(&text, &["one of \"fast\", \"slow\"", "did you mean \"fast\"?", "found the string \"Fast\""]);

    let (p, text) = only(&with_params("ConfigNode", json!({ "rate": 16000, "frame_ms": 25 })));
    assert_eq!(p.path, "nodes[0].params.frame_ms");
    has(&text, &["one of 10, 20, 30", "found 25"]);
}

#[test]
fn non_finite_numbers_are_rejected_when_parsing() {
    // JSON trees cannot hold NaN or infinity (serde_json would turn them into null), so the
    // parsers refuse them, with their location.
    let e = manifest::parse_yaml("version: \"1.0\"\nnodes:\n  - id: g\n    type: GainNode\n    params: {gain_db: .nan}\n")
        .unwrap_err();
    let text = e.to_string();
    has(&text, &["line 5", "not a finite number"]);

    let e = manifest::parse_yaml("x: -.inf\n").unwrap_err();
    has(&e.to_string(), &["line 1", "not a finite number"]);

    let e = manifest::parse_json("{\"version\": \"1.0\",\n \"nodes\": [{\"id\": \"g\", \"type\": \"GainNode\", \"params\": {\"gain_db\": 1e999}}]}")
        .unwrap_err();
    assert!(e.problems[0].path.starts_with("line 2, column "), "{}", e.problems[0].path);
}

#[test]
fn integer_valued_floats_are_integers() {
    let g = graph(&with_params("ConfigNode", json!({ "rate": 16000.0, "frame_ms": 30.0 })));
    assert_eq!(g.nodes[0].params["rate"], json!(16000));
    assert_eq!(g.nodes[0].params["rate"].as_i64(), Some(16000));
    assert_eq!(g.nodes[0].params["frame_ms"].as_i64(), Some(30));
    // Integers are fine where numbers are expected.
    let g = graph(&with_params("GainNode", json!({ "gain_db": -6 })));
    assert_eq!(g.nodes[0].params["gain_db"].as_f64(), Some(-6.0));
}

#[test]
fn defaults_are_filled_and_optional_params_without_default_are_null() {
    let g = graph(&with_params("ConfigNode", json!({ "rate": 16000 })));
    let p = &g.nodes[0].params;
    assert_eq!(p["mode"], json!("fast"));
    assert_eq!(p["threshold"], json!(0.5));
    assert_eq!(p["frame_ms"], json!(20));
    assert_eq!(p["enabled"], json!(true));
    assert_eq!(p.get("max_rate"), Some(&Value::Null));
    assert_eq!(p.get("label"), Some(&Value::Null));
    assert_eq!(p.len(), 7);
    // An explicit null for an optional param means "not given": the default applies.
    let g = graph(&with_params("ConfigNode", json!({ "rate": 16000, "mode": null })));
    assert_eq!(g.nodes[0].params["mode"], json!("fast"));
    // No params at all.
    let g = graph(&manifest(json!([gain("g")]), json!([])));
    assert_eq!(g.nodes[0].params["gain_db"].as_f64(), Some(0.0));
}

#[test]
fn node_type_check_runs_on_valid_params() {
    let (p, text) = only(&with_params("ConfigNode", json!({ "rate": 48000, "max_rate": 16000 })));
    assert_eq!(p.path, "nodes[0].params.max_rate");
    has(&text, &["expected at least rate (48000), found 16000"]);
    graph(&with_params("ConfigNode", json!({ "rate": 16000, "max_rate": 48000 })));
    // With an individually invalid param the check is skipped (only that problem is reported).
    let (p, _) = only(&with_params("ConfigNode", json!({ "rate": 48000, "max_rate": 16000, "mode": "x" })));
    assert_eq!(p.path, "nodes[0].params.mode");
}

#[test]
fn open_params_accept_anything_but_check_declared_ones() {
    let g = graph(&with_params("PyNode", json!({ "anything": [1, { "a": null }], "n": null })));
    assert_eq!(g.nodes[0].params["anything"], json!([1, { "a": null }]));
    assert_eq!(g.nodes[0].params.get("n"), Some(&Value::Null));
    let (p, _) = only(&with_params("PyNode", json!({ "model": "huge" })));
    assert_eq!(p.path, "nodes[0].params.model");
    // ParamKind::Any accepts any value.
    graph(&with_params("ConfigNode", json!({ "rate": 8000, "label": { "deep": [[[]]] } })));
}

// ---- edges --------------------------------------------------------------------------------------

#[test]
fn edges_must_be_a_list_of_objects() {
    let (p, text) = only(&manifest(json!([gain("g")]), json!({ "from": "g" })));
    assert_eq!(p.path, "edges");
    has(&text, &["a list of edges"]);
    let (p, _) = only(&manifest(json!([gain("g")]), json!(["g -> h"])));
    assert_eq!(p.path, "edges[0]");
    // Absent or null edges: no edges.
    graph(&json!({ "version": "1.0", "nodes": [gain("g")], "edges": null }));
}

#[test]
fn edge_endpoints_missing_or_naming_missing_nodes() {
    let (p, text) = only(&manifest(json!([pass("a"), pass("b")]), json!([{ "to": "b" }])));
    assert_eq!(p.path, "edges[0].from");
    has(&text, &["the id of a node", "found nothing"]);

    let (p, text) = only(&manifest(json!([pass("resample_16k"), pass("vad")]), json!([edge("resample16k", "vad")])));
    assert_eq!(p.path, "edges[0].from");
    has(&text, &["did you mean \"resample_16k\"?", "\"resample16k\", which is no node's id"]);

    let (p, text) = only(&manifest(json!([pass("a"), pass("b")]), json!([edge("a", "zzzzzz")])));
    assert_eq!(p.path, "edges[0].to");
    has(&text, &["the id of a node: a, b"]);

    let (p, _) = only(&manifest(json!([pass("a"), pass("b")]), json!([{ "from": "a", "to": ["b"] }])));
    assert_eq!(p.path, "edges[0].to");
}

#[test]
fn input_key_must_name_a_port_of_the_target() {
    let nodes = json!([pass("a"), pass("t"), { "id": "cap", "type": "CaptionNode" }]);
    let (p, text) = only(&manifest(
        nodes.clone(),
        json!([{ "from": "a", "to": "cap", "input_key": "audoi" }, { "from": "t", "to": "cap", "input_key": "text" }]),
    ));
    assert_eq!(p.path, "edges[0].input_key");
    has(&text, &["an input port of CaptionNode \"cap\": audio, text", "did you mean \"audio\"?", "found \"audoi\""]);

    // Two named ports: input_key is required.
    let (p, text) = only(&manifest(
        nodes.clone(),
        json!([{ "from": "a", "to": "cap" }, { "from": "t", "to": "cap", "input_key": "text" }]),
    ));
    assert_eq!(p.path, "edges[0].input_key");
    has(&text, &["an input_key naming an input port of CaptionNode \"cap\": audio, text", "found nothing"]);

    // A one-input node takes no input_key other than "in".
    let (p, text) = only(&manifest(json!([pass("a"), pass("b")]), json!([{ "from": "a", "to": "b", "input_key": "audio" }])));
    assert_eq!(p.path, "edges[0].input_key");
    has(&text, &["no input_key, or \"in\"", "PassthroughNode \"b\" has a single input"]);
    let g = graph(&manifest(json!([pass("a"), pass("b")]), json!([{ "from": "a", "to": "b", "input_key": "in" }])));
    assert_eq!(g.edges[0].port, "in");

    let (p, _) = only(&manifest(json!([pass("a"), pass("b")]), json!([{ "from": "a", "to": "b", "input_key": 3 }])));
    assert_eq!(p.path, "edges[0].input_key");
}

#[test]
fn port_resolution() {
    // One -> "in"; Named with one port -> that port; Any -> the source's id or input_key.
    let g = graph(&manifest(
        json!([pass("src"), gain("left"), gain("right"), { "id": "mix", "type": "MixNode" }, { "id": "sink", "type": "SinkNode" }]),
        json!([
            edge("src", "left"),
            edge("src", "right"),
            edge("left", "mix"),
            { "from": "right", "to": "mix", "input_key": "r" },
            edge("mix", "sink"),
        ]),
    ));
    let ports: Vec<&str> = g.edges.iter().map(|e| e.port.as_str()).collect();
    assert_eq!(ports, ["in", "in", "left", "r", "audio"]);
}

#[test]
fn output_key_must_be_produced_by_the_source() {
    let nodes = json!([pass("a"), { "id": "split", "type": "SplitNode" }, pass("b"), { "id": "py", "type": "PyNode" }]);
    let (p, text) = only(&manifest(nodes.clone(), json!([edge("a", "split"), { "from": "split", "to": "b", "output_key": "segment" }])));
    assert_eq!(p.path, "edges[1].output_key");
    has(&text, &["an output of SplitNode \"split\": audio, segments, frames", "did you mean \"segments\"?"]);

    let (p, text) = only(&manifest(nodes.clone(), json!([{ "from": "a", "to": "b", "output_key": "audio" }])));
    assert_eq!(p.path, "edges[0].output_key");
    has(&text, &["no output_key (PassthroughNode \"a\" has one whole output)"]);

    // open_outputs: any key.
    let g = graph(&manifest(nodes, json!([{ "from": "py", "to": "b", "output_key": "whatever" }])));
    assert_eq!(g.edges[0].output_key.as_deref(), Some("whatever"));
}

#[test]
fn one_input_node_with_several_incoming_edges() {
    let (p, text) = only(&manifest(json!([pass("a"), pass("b"), pass("c")]), json!([edge("a", "c"), edge("b", "c")])));
    assert_eq!(p.path, "edges[1].to");
    has(&text, &["PassthroughNode \"c\" takes one input, already fed by edges[0]", "MixNode", "a second edge into \"c\""]);
}

#[test]
fn two_edges_into_the_same_port() {
    let ps = problems(&manifest(
        json!([pass("a"), pass("b"), { "id": "cap", "type": "CaptionNode" }]),
        json!([
            { "from": "a", "to": "cap", "input_key": "audio" },
            { "from": "b", "to": "cap", "input_key": "audio" },
        ]),
    ));
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert_eq!(ps[0].path, "edges[1].input_key");
    has(&ps[0].to_string(), &["one edge per input port (edges[0] already feeds it)", "a second edge into port \"audio\" of \"cap\""]);
    // The port the second edge was perhaps meant for is still unfed.
    assert_eq!(ps[1].path, "nodes[2]");
    has(&ps[1].to_string(), &["no edge into \"text\""]);
}

#[test]
fn mix_fed_twice_by_one_source_needs_input_keys() {
    let (p, text) = only(&manifest(
        json!([pass("a"), { "id": "split", "type": "SplitNode" }, { "id": "mix", "type": "MixNode" }]),
        json!([
            edge("a", "split"),
            { "from": "split", "to": "mix", "output_key": "audio" },
            { "from": "split", "to": "mix", "output_key": "frames" },
        ]),
    ));
    assert_eq!(p.path, "edges[2]");
    has(&text, &["give each edge its own input_key", "port \"split\" of \"mix\""]);
}

#[test]
fn duplicate_edges() {
    let (p, text) = only(&manifest(json!([pass("a"), { "id": "mix", "type": "MixNode" }]), json!([edge("a", "mix"), edge("a", "mix")])));
    assert_eq!(p.path, "edges[1]");
    has(&text, &["each edge listed once", "a repeat of edges[0]"]);
}

#[test]
fn named_ports_must_all_be_fed() {
    let (p, text) = only(&manifest(
        json!([pass("a"), { "id": "cap", "type": "CaptionNode" }]),
        json!([{ "from": "a", "to": "cap", "input_key": "audio" }]),
    ));
    assert_eq!(p.path, "nodes[1]");
    has(&text, &["an edge into every input port of CaptionNode: audio, text", "no edge into \"text\""]);
}

// ---- cycles -------------------------------------------------------------------------------------

#[test]
fn cycles_name_their_nodes_in_order() {
    let (p, text) = only(&manifest(
        json!([pass("a"), pass("b"), pass("c")]),
        json!([edge("a", "b"), edge("b", "c"), edge("c", "a")]),
    ));
    assert_eq!(p.path, "edges[2]");
    has(&text, &["without cycles", "the cycle a -> b -> c -> a"]);

    let (p, text) = only(&manifest(json!([pass("a")]), json!([edge("a", "a")])));
    assert_eq!(p.path, "edges[0]");
    has(&text, &["the cycle a -> a"]);

    // Two separate cycles, plus a node downstream of one (not itself on a cycle): two problems.
    let ps = problems(&manifest(
        json!([pass("a"), pass("b"), { "id": "m", "type": "MixNode" }, { "id": "x", "type": "MixNode" }, pass("y")]),
        json!([edge("a", "b"), edge("b", "m"), edge("m", "a"), edge("m", "x"), edge("x", "y"), edge("y", "x")]),
    ));
    let found: Vec<&str> = ps.iter().map(|p| p.found.as_str()).collect();
    assert_eq!(found, ["the cycle a -> b -> m -> a", "the cycle x -> y -> x"]);
}

// ---- config -------------------------------------------------------------------------------------

fn with_config(config: Value) -> Value {
    let mut m = manifest(json!([gain("g")]), json!([]));
    m["config"] = config;
    m
}

#[test]
fn config_fields_are_typed_and_ranged() {
    let cases = [
        (json!({ "enable_metrics": "yes" }), "config.enable_metrics", "true or false"),
        (json!({ "retry_policy": "expo" }), "config.retry_policy", "one of \"none\", \"fixed\", \"exponential\""),
        (json!({ "max_retries": 101 }), "config.max_retries", "an integer from 0 to 100"),
        (json!({ "max_retries": -1 }), "config.max_retries", "an integer from 0 to 100"),
        (json!({ "workers": 0 }), "config.workers", "an integer from 1 to 256"),
        (json!({ "workers": 257 }), "config.workers", "an integer from 1 to 256"),
        (json!({ "workers": "4" }), "config.workers", "without quotes"),
        (json!({ "retry_jitter": 1 }), "config.retry_jitter", "true or false"),
        (json!({ "retry_base_delay_ms": 600001 }), "config.retry_base_delay_ms", "from 0 to 600000"),
        (json!({ "circuit_breaker_threshold": -5 }), "config.circuit_breaker_threshold", "from 0 to 1000000"),
        (json!({ "circuit_breaker_cooldown_ms": 1.5 }), "config.circuit_breaker_cooldown_ms", "whole number"),
        (json!({ "retry_base_delay_ms": 500, "retry_max_delay_ms": 200 }), "config.retry_max_delay_ms", "at least retry_base_delay_ms (500)"),
        (json!(["workers", 2]), "config", "an object of settings"),
    ];
    for (config, path, words) in cases {
        let (p, text) = only(&with_config(config.clone()));
        assert_eq!(p.path, path, "for {config}");
        has(&text, &[words]);
    }
}

#[test]
fn config_values_and_defaults() {
    let g = graph(&manifest(json!([gain("g")]), json!([])));
    let c = &g.config;
    assert!(!c.enable_metrics);
    assert_eq!(c.retry_policy, RetryPolicy::None);
    assert_eq!((c.max_retries, c.workers), (3, 1));
    assert_eq!((c.retry_base_delay_ms, c.retry_max_delay_ms, c.retry_jitter), (100, 10_000, false));
    assert_eq!((c.circuit_breaker_threshold, c.circuit_breaker_cooldown_ms), (5, 30_000));

    let g = graph(&with_config(json!({
        "enable_metrics": true, "retry_policy": "exponential", "max_retries": 5, "workers": 4.0,
        "retry_base_delay_ms": 50, "retry_max_delay_ms": 2000, "retry_jitter": true,
        "circuit_breaker_threshold": 0, "circuit_breaker_cooldown_ms": 1000,
    })));
    let c = &g.config;
    assert!(c.enable_metrics && c.retry_jitter);
    assert_eq!(c.retry_policy, RetryPolicy::Exponential);
    assert_eq!((c.max_retries, c.workers), (5, 4));
    assert_eq!((c.retry_base_delay_ms, c.retry_max_delay_ms), (50, 2000));
    assert_eq!((c.circuit_breaker_threshold, c.circuit_breaker_cooldown_ms), (0, 1000));
}

// ---- many problems at once ---------------------------------------------------------------------

#[test]
fn every_problem_is_reported_at_once() {
    let tree = json!({
        "version": "0.9",
        "nodes": [
            { "id": "src", "type": "PassthroughNode" },
            { "id": "src", "type": "GainNode", "params": { "gain_db": "loud" } },
            { "id": "r", "type": "AudioResampler" },
            { "id": "c", "type": "ConfigNode", "params": { "mode": "fast" }, "runtime_hint": "gpu" },
        ],
        "edges": [ { "from": "src", "to": "nowhere" }, { "from": "c", "to": "c" } ],
        "config": { "workers": 0, "retry": "fixed" },
        "extra": true,
    });
    let e = validate(&tree, &registry()).unwrap_err();
    let paths: Vec<&str> = e.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "extra",
            "version",
            "nodes[1].id",
            "nodes[1].params.gain_db",
            "nodes[2].type",
            "nodes[3].params.rate",
            "nodes[3].runtime_hint",
            "edges[0].to",
            "edges[1]",
            "config.retry",
            "config.workers",
        ]
    );
    let text = e.to_string();
    assert!(text.starts_with("invalid manifest (11 problems)\n  - extra: expected one of the fields"), "{text}");
    assert_eq!(text.lines().count(), 12);
}

#[test]
fn very_many_problems_are_capped_with_a_count() {
    let nodes: Vec<Value> = (0..500).map(|i| json!({ "id": format!("n{i}"), "type": "Nope" })).collect();
    let e = validate(&manifest(json!(nodes), json!([])), &registry()).unwrap_err();
    assert_eq!(e.problems.len(), 101);
    let last = e.problems.last().unwrap();
    assert_eq!(last.path, "manifest");
    assert_eq!(last.found, "400 more problems not listed");
}

// ---- never panic ------------------------------------------------------------------------------

#[test]
fn odd_values_never_panic() {
    let odd = vec![
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(f64::MAX),
        json!(""),
        json!("x".repeat(10_000)),
        json!("é\u{0}\n\"\\"),
        json!([]),
        json!([null, [null, [null]]]),
        json!({}),
        json!({ "": null, "a.b": { "c": [null] } }),
        json!((0..5000).collect::<Vec<_>>()),
        json!(vec![json!(null); 5000]),
    ];
    let reg = registry();
    let mut checked = 0;
    let mut run = |tree: Value| {
        // Either outcome is fine; a panic fails the test.
        match validate(&tree, &reg) {
            Ok(_) => {}
            Err(e) => assert!(!e.problems.is_empty() && !e.to_string().is_empty()),
        }
        checked += 1;
    };
    for v in &odd {
        run(v.clone());
        run(json!({ "version": v, "nodes": v, "edges": v, "config": v, "name": v, "metadata": v }));
        run(json!({ "version": "1.0", "nodes": [v], "edges": [v] }));
        run(manifest(
            json!([{ "id": v, "type": v, "params": v, "runtime_hint": v }, pass("a"), { "id": "mix", "type": "MixNode" }]),
            json!([{ "from": v, "to": v, "output_key": v, "input_key": v }, { "from": "a", "to": "mix", "input_key": v }]),
        ));
        for ty in ["GainNode", "ConfigNode", "PyNode", "CaptionNode", "SplitNode", "MixNode", "AudioResampleNode"] {
            run(with_params(ty, json!({ "gain_db": v, "rate": v, "mode": v, "threshold": v, "frame_ms": v, "enabled": v, "max_rate": v, "label": v, "model": v })));
            run(with_params(ty, v.clone()));
            run(manifest(
                json!([pass("a"), { "id": "n", "type": ty }]),
                json!([{ "from": "a", "to": "n", "input_key": v }, { "from": "n", "to": "a", "output_key": v }]),
            ));
        }
        let mut config = serde_json::Map::new();
        for field in remotemedia::manifest::validate::config_fields() {
            config.insert(field.name.to_string(), v.clone());
        }
        run(with_config(Value::Object(config)));
    }
    // Huge graphs (as many nodes as a manifest may have): a long chain closed into one big
    // cycle, and a long valid chain.
    let n = remotemedia::limits::MANIFEST_NODES;
    let nodes: Vec<Value> = (0..n).map(|i| pass(&format!("n{i}"))).collect();
    let ring: Vec<Value> = (0..n).map(|i| edge(&format!("n{i}"), &format!("n{}", (i + 1) % n))).collect();
    let e = validate(&manifest(json!(nodes.clone()), json!(ring)), &reg).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    assert!(e.problems[0].found.starts_with("the cycle n0 -> n1 -> n2"));
    assert!(e.problems[0].found.ends_with(&format!("n7 -> … ({} more) -> n0", n - 8)), "{}", e.problems[0].found);
    let chain: Vec<Value> = (1..n).map(|i| edge(&format!("n{}", i - 1), &format!("n{i}"))).collect();
    let g = validate(&manifest(json!(nodes.clone()), json!(chain)), &reg).unwrap();
    assert_eq!(g.order, (0..n).collect::<Vec<_>>());
    // Many edges into missing nodes among many ids: suggestions stay bounded.
    let bad: Vec<Value> = (0..n).map(|i| edge(&format!("n{i}"), &format!("m{i}"))).collect();
    let e = validate(&manifest(json!(nodes), json!(bad)), &reg).unwrap_err();
    assert_eq!(e.problems.len(), 101);
    assert!(checked > 300);
}

// ---- text and files ---------------------------------------------------------------------------

const SPEECH_JSON: &str = r#"{
  "version": "1.0",
  "name": "gain chain",
  "nodes": [
    {"id": "pre", "type": "PassthroughNode"},
    {"id": "louder", "type": "GainNode", "params": {"gain_db": 6}}
  ],
  "edges": [{"from": "pre", "to": "louder"}],
  "config": {"workers": 2}
}"#;

const SPEECH_YAML: &str = "# the same chain in YAML
version: \"1.0\"
name: gain chain
nodes:
  - id: pre
    type: PassthroughNode
  - id: louder
    type: GainNode
    params:
      gain_db: 6
edges:
  - from: pre
    to: louder
config:
  workers: 2
";

#[test]
fn json_and_yaml_text_give_the_same_graph() {
    let reg = registry();
    let a = manifest::load_str(SPEECH_JSON, &reg).unwrap();
    let b = manifest::load_str(SPEECH_YAML, &reg).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.nodes[1].params["gain_db"].as_f64(), Some(6.0));
    assert_eq!(a.config.workers, 2);
    assert_eq!(manifest::parse_yaml(SPEECH_YAML).unwrap(), manifest::parse_json(SPEECH_JSON).unwrap());
}

#[test]
fn files_are_read_by_extension() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("manifest_validation");
    std::fs::create_dir_all(&dir).unwrap();
    let reg = registry();
    let json_path = dir.join("chain.json");
    let yaml_path = dir.join("chain.yml");
    std::fs::write(&json_path, SPEECH_JSON).unwrap();
    std::fs::write(&yaml_path, SPEECH_YAML).unwrap();
    let a = manifest::load_file(&json_path, &reg).unwrap();
    let b = manifest::load_file(&yaml_path, &reg).unwrap();
    assert_eq!(a, b);

    // A .json file holding YAML is a JSON syntax error.
    let wrong = dir.join("wrong.json");
    std::fs::write(&wrong, SPEECH_YAML).unwrap();
    match manifest::load_file(&wrong, &reg) {
        Err(Error::Manifest(e)) => assert_eq!(e.problems[0].expected, "valid JSON"),
        other => panic!("expected a JSON error, got {other:?}"),
    }
    match manifest::load_file(&dir.join("missing.yaml"), &reg) {
        Err(Error::Io { context, .. }) => has(&context, &["cannot read manifest", "missing.yaml"]),
        other => panic!("expected an IO error, got {other:?}"),
    }
    // Validation problems come through load_file too.
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "version: \"1.0\"\nnodes:\n  - {id: g, type: GainNode, params: {gain_db: 99}}\n").unwrap();
    match manifest::load_file(&bad, &reg) {
        Err(Error::Manifest(e)) => assert_eq!(e.problems[0].path, "nodes[0].params.gain_db"),
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

fn syntax_error(result: Result<Value, ManifestError>) -> Problem {
    let e = result.unwrap_err();
    assert_eq!(e.problems.len(), 1);
    e.problems[0].clone()
}

#[test]
fn syntax_errors_give_line_and_column() {
    // Missing comma after line 2.
    let p = syntax_error(manifest::parse_json("{\n  \"version\": \"1.0\"\n  \"nodes\": []\n}"));
    assert_eq!(p.path, "line 3, column 3");
    assert_eq!(p.expected, "valid JSON");
    has(&p.found, &["expected `,` or `}`"]);

    // A text cut short is placed where it ends: the 1-based column after its last character.
    let p = syntax_error(manifest::parse_json("{\"version\": \"1.0\", \"nodes\": ["));
    assert_eq!((p.path.as_str(), p.found.as_str()), ("line 1, column 30", "a syntax error: EOF while parsing a list"));
    let p = syntax_error(manifest::parse_json("{\"a\":\n"));
    assert_eq!((p.path.as_str(), p.found.as_str()), ("line 2, column 1", "a syntax error: EOF while parsing a value"));

    // A control character is placed where it stands, not at libyaml's line 1, column 1.
    let p = syntax_error(manifest::parse_yaml("version: '1.0'\nname: a\u{7}b\nnodes: []\n"));
    assert_eq!(p.path, "line 2, column 8");
    assert_eq!(p.found, "a syntax error: unacceptable character #x0007: special characters are not allowed");

    // Bad indentation in YAML.
    let p = syntax_error(manifest::parse_yaml("version: \"1.0\"\nnodes:\n  - id: a\n   type: GainNode\n"));
    assert_eq!(p.expected, "valid YAML");
    assert!(p.path.starts_with("line 4, column "), "{}", p.path);

    // Repeated keys would silently lose one of the values: both parsers refuse them.
    let p = syntax_error(manifest::parse_json("{\"version\": \"1.0\",\n \"nodes\": [],\n \"nodes\": []}"));
    assert!(p.path.starts_with("line 3"), "{}", p.path);
    has(&p.found, &["duplicate key \"nodes\""]);
    let p = syntax_error(manifest::parse_yaml("version: \"1.0\"\nnodes: []\nnodes: []\n"));
    assert!(p.path.starts_with("line 3"), "{:?}", p);
    has(&p.found, &["duplicate", "nodes"]);

    // load_str picks the parser from the first character and reports the same way.
    match manifest::load_str("{\"version\": }", &registry()) {
        Err(Error::Manifest(e)) => assert_eq!(e.problems[0].path, "line 1, column 13"),
        other => panic!("expected a syntax error, got {other:?}"),
    }
    // Empty YAML is a valid document (null) but not a manifest.
    match manifest::load_str("", &registry()) {
        Err(Error::Manifest(e)) => assert_eq!(e.problems[0].path, "manifest"),
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

#[test]
fn yaml_scalar_keys_become_strings() {
    let tree = manifest::parse_yaml("version: \"1.0\"\nnodes:\n  - id: g\n    type: PyNode\n    params: {1: one, true: yes}\n").unwrap();
    let g = graph(&tree);
    assert_eq!(g.nodes[0].params["1"], json!("one"));
    assert_eq!(g.nodes[0].params["true"], json!("yes"));
}

// ---- round trip --------------------------------------------------------------------------------

#[test]
fn to_manifest_round_trips() {
    let tree = json!({
        "version": "1.0",
        "name": "everything",
        "metadata": { "ignored": true },
        "nodes": [
            { "id": "src", "type": "PassthroughNode", "runtime_hint": "rust" },
            { "id": "split", "type": "SplitNode" },
            { "id": "cfg", "type": "ConfigNode", "params": { "rate": 16000.0, "max_rate": 48000, "label": [1, "x"] } },
            { "id": "g1", "type": "GainNode", "params": { "gain_db": -3.5 } },
            { "id": "g2", "type": "GainNode" },
            { "id": "mix", "type": "MixNode" },
            { "id": "cap", "type": "CaptionNode" },
            { "id": "py", "type": "PyNode", "params": { "model": "tiny", "extra": null, "nested": { "a": [] } }, "runtime_hint": "python" },
            { "id": "sink", "type": "SinkNode" },
        ],
        "edges": [
            { "from": "src", "to": "split" },
            { "from": "split", "to": "cfg", "output_key": "frames" },
            { "from": "split", "to": "g1", "output_key": "audio" },
            { "from": "src", "to": "g2", "input_key": "in" },
            { "from": "g1", "to": "mix" },
            { "from": "g2", "to": "mix", "input_key": "second" },
            { "from": "mix", "to": "cap", "input_key": "audio" },
            { "from": "cfg", "to": "cap", "input_key": "text" },
            { "from": "cap", "to": "py" },
            { "from": "py", "to": "sink", "output_key": "anything" },
        ],
        "config": { "workers": 3, "retry_policy": "fixed", "retry_jitter": true },
    });
    let reg = registry();
    let g = validate(&tree, &reg).unwrap();
    let canonical = to_manifest(&g);
    let g2 = validate(&canonical, &reg).unwrap();
    assert_eq!(g2, g);
    // Canonical means stable: a second trip gives the same text.
    assert_eq!(to_manifest(&g2), canonical);
    // Keys appear only where they carry information.
    let edges = canonical["edges"].as_array().unwrap();
    assert_eq!(edges[0], json!({ "from": "src", "to": "split" }));
    assert_eq!(edges[3], json!({ "from": "src", "to": "g2" }));
    assert_eq!(edges[4], json!({ "from": "g1", "to": "mix" }));
    assert_eq!(edges[5]["input_key"], json!("second"));
    assert_eq!(edges[9], json!({ "from": "py", "to": "sink", "output_key": "anything" }));
    assert_eq!(canonical["nodes"][2]["params"]["rate"], json!(16000));
    assert_eq!(canonical["nodes"][4]["params"], json!({ "gain_db": 0.0 }));
    assert_eq!(canonical["config"]["retry_max_delay_ms"], json!(10_000));
    // Through YAML text as well.
    let yaml = serde_norway::to_string(&canonical).unwrap();
    assert_eq!(manifest::load_str(&yaml, &reg).unwrap(), g);
}

// ---- topological order -------------------------------------------------------------------------

fn order_ids(g: &Graph) -> Vec<&str> {
    g.order.iter().map(|&i| g.nodes[i].id.as_str()).collect()
}

#[test]
fn diamond_order_follows_the_manifest() {
    // Listed sink first: the order must still start at the source, and b before c (manifest order).
    let nodes = json!([{ "id": "d", "type": "MixNode" }, pass("b"), pass("c"), pass("a")]);
    let edges = vec![edge("a", "b"), edge("a", "c"), edge("b", "d"), edge("c", "d")];
    let g = graph(&manifest(nodes.clone(), json!(edges.clone())));
    assert_eq!(order_ids(&g), ["a", "b", "c", "d"]);
    assert_eq!(g.sources().collect::<Vec<_>>(), [3]);
    assert_eq!(g.sinks().collect::<Vec<_>>(), [0]);
    assert_eq!(g.nodes[0].inputs, [2, 3]);
    assert_eq!(g.nodes[3].outputs, [0, 1]);
    // Edge order does not change the node order.
    let mut reversed = edges;
    reversed.reverse();
    assert_eq!(order_ids(&graph(&manifest(nodes, json!(reversed)))), ["a", "b", "c", "d"]);
}

#[test]
fn fan_out_order_and_outputs() {
    let nodes = json!([pass("z"), pass("src"), pass("x"), pass("y")]);
    let g = graph(&manifest(nodes, json!([edge("src", "y"), edge("src", "x"), edge("src", "z")])));
    assert_eq!(order_ids(&g), ["src", "z", "x", "y"]);
    let sinks: Vec<&str> = g.sinks().map(|i| g.nodes[i].id.as_str()).collect();
    assert_eq!(sinks, ["z", "x", "y"]);
    assert_eq!(g.nodes[1].outputs, [0, 1, 2]);
    // Validating again gives the same graph.
    assert_eq!(graph(&to_manifest(&g)), g);
}

#[test]
fn mix_with_named_ports_order() {
    let g = graph(&manifest(
        json!([pass("in"), gain("right"), gain("left"), { "id": "mix", "type": "MixNode" }, pass("after")]),
        json!([
            edge("in", "left"),
            edge("in", "right"),
            { "from": "left", "to": "mix", "input_key": "l" },
            { "from": "right", "to": "mix", "input_key": "r" },
            edge("mix", "after"),
        ]),
    ));
    assert_eq!(order_ids(&g), ["in", "right", "left", "mix", "after"]);
    let mix = &g.nodes[3];
    let ports: Vec<&str> = mix.inputs.iter().map(|&e| g.edges[e].port.as_str()).collect();
    assert_eq!(ports, ["l", "r"]);
}

// ---- the example manifests ---------------------------------------------------------------------

/// Stand-ins with the params the example manifests use, so the examples are checked here even
/// while the real node types are being written elsewhere.
fn example_registry() -> Registry {
    let mut r = registry();
    r.register(NodeType {
        params: vec![ParamSpec::required("target_format", ParamKind::Choice(&["f32", "i16", "i32", "u8"]), "")],
        ..unbuilt("FormatConverterNode", "stand-in")
    });
    r.register(NodeType {
        params: vec![
            ParamSpec::required("output_rate", ParamKind::Int { min: 8000, max: 192000 }, ""),
            ParamSpec::optional("input_rate", ParamKind::Int { min: 8000, max: 192000 }, ""),
            ParamSpec::with_default("quality", ParamKind::Choice(&["low", "medium", "high", "very_high"]), json!("high"), ""),
        ],
        ..unbuilt("AudioResampleNode", "stand-in")
    });
    r.register(NodeType {
        params: vec![ParamSpec::with_default("frame_duration_ms", ParamKind::IntChoice(&[10, 20, 30]), json!(30), "")],
        ..unbuilt("VADNode", "stand-in")
    });
    r.register(remotemedia::nodes::channel_mix::node_type());
    r.register(remotemedia::nodes::segment::node_type());
    r
}

#[test]
fn example_manifests_validate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dataflows");
    let reg = example_registry();
    let load = |name: &str| manifest::load_file(&dir.join(name), &reg).unwrap_or_else(|e| panic!("{name}: {e}"));

    let yaml = load("speech_vad.yaml");
    assert_eq!(yaml, load("speech_vad.json"));
    assert_eq!(order_ids(&yaml), ["to_f32", "mono", "resample_16k", "vad", "clips"]);
    assert_eq!(yaml.nodes[2].params["output_rate"], json!(16000));
    let outputs: Vec<&str> = yaml.output_nodes().iter().map(|&i| yaml.nodes[i].id.as_str()).collect();
    assert_eq!(outputs, ["resample_16k", "vad", "clips"]);

    let fanout = load("fanout.yaml");
    let sinks: Vec<&str> = fanout.sinks().map(|i| fanout.nodes[i].id.as_str()).collect();
    assert_eq!(sinks.len(), 2);
    let rates: Vec<i64> = fanout.sinks().filter_map(|i| fanout.nodes[i].params["output_rate"].as_i64()).collect();
    assert_eq!(rates, [16000, 8000]);
    assert_eq!(fanout.sources().count(), 1);

    let mix = load("mix.yaml");
    let last = *mix.order.last().unwrap();
    assert_eq!(mix.nodes[last].node_type.name, "MixNode");
    assert_eq!(mix.nodes[last].inputs.len(), 2);
}

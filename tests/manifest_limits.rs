//! The manifest limits (src/limits.rs, docs/reliability.md): every one refused with its own
//! problem, before the text is parsed or the tree is walked, and quickly: texts that took minutes
//! (100,000-deep YAML) or would take gigabytes (alias bombs) are refused in well under the time
//! bounds stated here, which are hang guards for two busy cores, not benchmarks.

use std::time::{Duration, Instant};

use remotemedia::limits::{MANIFEST_BYTES, MANIFEST_EDGES, MANIFEST_NESTING, MANIFEST_NODES, MANIFEST_STRING_BYTES, MANIFEST_VALUES};
use remotemedia::manifest::{parse_json, parse_str, parse_yaml, read_file, validate};
use remotemedia::{Error, ManifestError, Problem, Registry};
use serde_json::{json, Value};

/// A hang guard: work that used to take minutes must end well within this.
const QUICK: Duration = Duration::from_secs(10);

fn only_problem(r: Result<Value, ManifestError>) -> Problem {
    let e = r.expect_err("refused");
    assert_eq!(e.problems.len(), 1, "{e}");
    e.problems[0].clone()
}

fn timed<T>(f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    assert!(t.elapsed() < QUICK, "took {:?}", t.elapsed());
    out
}

#[test]
fn deep_yaml_is_refused_before_parsing_at_the_place_it_gets_too_deep() {
    let expected = format!("lists and mappings nested at most {MANIFEST_NESTING} deep");
    // Flow style: 16,000 levels took 30 s in libyaml before; 100,000 is refused in one pass.
    let flow = format!("version: '1.0'\nnodes: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let p = timed(|| only_problem(parse_yaml(&flow)));
    assert_eq!(p, Problem::new("line 2, column 71", expected.clone(), format!("a list or mapping nested {} deep", MANIFEST_NESTING + 1)));
    // Block style: compact sequences, 100,000 deep.
    let block = format!("nodes:\n  {}x\n", "- ".repeat(100_000));
    assert_eq!(timed(|| only_problem(parse_yaml(&block))).path, "line 2, column 129");
    // JSON, by either entry point.
    let deep_json = format!("{{\"a\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(timed(|| only_problem(parse_json(&deep_json))).expected, expected);
    assert_eq!(timed(|| only_problem(parse_str(&deep_json))).expected, expected);
    // Exactly at the limit is fine.
    let ok = format!("{}{}", "[".repeat(MANIFEST_NESTING), "]".repeat(MANIFEST_NESTING));
    assert!(parse_yaml(&ok).is_ok() && parse_json(&ok).is_ok());
}

#[test]
fn nesting_the_text_scan_cannot_see_is_refused_as_the_tree_is_built() {
    // An alias that contains itself expands without end: refused at the limit, not by a stack overflow.
    let p = timed(|| only_problem(parse_yaml("a: &x [1, *x]\n")));
    assert_eq!(p, Problem::new("manifest", format!("lists and mappings nested at most {MANIFEST_NESTING} deep"), format!("a list or mapping nested {} deep", MANIFEST_NESTING + 1)));
}

#[test]
fn the_558_byte_alias_bomb_is_refused_quickly() {
    let bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n\
                b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
                d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
                f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
                h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    let p = timed(|| only_problem(parse_yaml(bomb)));
    assert_eq!(p.path, "manifest");
    assert!(p.expected.starts_with(&format!("at most {MANIFEST_VALUES} values")), "{p}");
    // A bomb wide enough to pass serde_norway's own alias guard meets the values limit.
    let wide = format!("a: &a [{}]\nb: [{}]\n", vec!["0"; 20_000].join(","), vec!["*a"; 100].join(","));
    assert_eq!(timed(|| only_problem(parse_yaml(&wide))), Problem::new("manifest", p.expected.clone(), "more values"));
    // Aliases used in moderation are fine.
    let tree = parse_yaml("p: &p {gain_db: 6}\nq: *p\n").expect("aliases");
    assert_eq!(tree, json!({"p": {"gain_db": 6}, "q": {"gain_db": 6}}));
}

#[test]
fn values_strings_and_size_have_their_limits() {
    let many = format!("[{}]", vec!["0"; MANIFEST_VALUES].join(","));
    assert_eq!(timed(|| only_problem(parse_json(&many))).found, "more values");
    let long = "x".repeat(MANIFEST_STRING_BYTES + 1);
    let p = only_problem(parse_json(&format!("{{\"name\": \"{long}\"}}")));
    assert_eq!(p.expected, format!("strings of at most {MANIFEST_STRING_BYTES} bytes"));
    assert!(p.found.starts_with(&format!("a string of {} bytes: \"xxx", MANIFEST_STRING_BYTES + 1)) && p.found.len() < 100, "{p}");
    // Keys too.
    assert_eq!(only_problem(parse_yaml(&format!("{long}: 1\n"))).expected, p.expected);
    let big = format!("# {}\nversion: '1.0'\n", " ".repeat(MANIFEST_BYTES));
    let p = only_problem(parse_str(&big));
    assert_eq!(p, Problem::new("manifest", format!("a manifest of at most {MANIFEST_BYTES} bytes"), format!("{} bytes", big.len())));
}

#[test]
fn trees_built_in_code_are_held_to_the_same_limits() {
    let mut deep = json!(1);
    for _ in 0..MANIFEST_NESTING {
        deep = json!([deep]);
    }
    let e = validate(&json!({"version": "1.0", "nodes": [], "metadata": {"x": deep}}), &Registry::builtin()).expect_err("deep");
    assert_eq!(e.problems, vec![Problem::new("manifest", format!("lists and mappings nested at most {MANIFEST_NESTING} deep"), format!("a list or mapping nested {} deep", MANIFEST_NESTING + 1))]);
}

fn passthroughs(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"id": format!("n{i}"), "type": "PassthroughNode"})).collect()
}

#[test]
fn node_and_edge_counts_are_checked_before_any_node_is() {
    let r = Registry::builtin();
    let e = timed(|| validate(&json!({"version": "1.0", "nodes": passthroughs(MANIFEST_NODES + 1), "config": {"workers": 0}}), &r)).expect_err("too many");
    assert_eq!(e.problems[0], Problem::new("nodes", format!("at most {MANIFEST_NODES} nodes"), format!("a list of {} nodes", MANIFEST_NODES + 1)));
    // The config is still checked; nothing else is.
    assert_eq!(e.problems.len(), 2, "{e}");
    assert_eq!(e.problems[1].path, "config.workers");
    let edges: Vec<Value> = (0..MANIFEST_EDGES + 1).map(|_| json!({"from": "a", "to": "b"})).collect();
    let e = validate(&json!({"version": "1.0", "nodes": passthroughs(2), "edges": edges}), &r).expect_err("too many");
    assert_eq!(e.problems, vec![Problem::new("edges", format!("at most {MANIFEST_EDGES} edges"), format!("a list of {} edges", MANIFEST_EDGES + 1))]);
    // At the limit, a manifest validates.
    assert!(validate(&json!({"version": "1.0", "nodes": passthroughs(MANIFEST_NODES)}), &r).is_ok());
}

#[test]
fn a_long_cycle_is_named_in_a_short_message() {
    let n = MANIFEST_NODES;
    let edges: Vec<Value> = (0..n).map(|i| json!({"from": format!("n{i}"), "to": format!("n{}", (i + 1) % n)})).collect();
    let e = timed(|| validate(&json!({"version": "1.0", "nodes": passthroughs(n), "edges": edges}), &Registry::builtin())).expect_err("cycle");
    assert_eq!(e.problems.len(), 1);
    assert_eq!(e.problems[0].found, format!("the cycle n0 -> n1 -> n2 -> n3 -> n4 -> n5 -> n6 -> n7 -> … ({} more) -> n0", n - 8));
    assert!(e.to_string().len() < 300, "{e}");
}

#[test]
fn manifest_files_too_large_or_not_utf8_are_manifest_errors() {
    let dir = std::env::temp_dir().join(format!("rm-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("latin1.yaml");
    std::fs::write(&bad, b"version: '1.0'\nname: caf\xe9\n").unwrap();
    match read_file(&bad) {
        Err(Error::Manifest(m)) => assert_eq!(m.problems, vec![Problem::new("manifest", "UTF-8 text", "bytes that are not UTF-8 (from byte 24)")]),
        other => panic!("{other:?}"),
    }
    let big = dir.join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(MANIFEST_BYTES as u64 + 1).unwrap(); // sparse: nothing is read
    match read_file(&big) {
        Err(Error::Manifest(m)) => assert_eq!(m.problems[0].found, format!("{} bytes", MANIFEST_BYTES + 1)),
        other => panic!("{other:?}"),
    }
    // Not regular files: refused without being opened (a FIFO would block the read forever).
    let not_regular = |p: &std::path::Path| match read_file(p) {
        Err(Error::Manifest(m)) => m.problems,
        other => panic!("{other:?}"),
    };
    assert_eq!(not_regular(&dir), vec![Problem::new("manifest", "a regular file", "a directory")]);
    let fifo = dir.join("fifo.yaml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_eq!(timed(|| not_regular(&fifo)), vec![Problem::new("manifest", "a regular file", "a FIFO, socket or device (not opened: reading one can block)")]);
    // A symlink loop is not "not found".
    let looped = dir.join("loop.yaml");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let p = not_regular(&looped);
    assert_eq!((p[0].path.as_str(), p[0].expected.as_str()), ("manifest", "a readable file"));
    assert!(p[0].found.contains("symbolic links"), "{}", p[0].found);
    std::fs::remove_dir_all(&dir).unwrap();
}

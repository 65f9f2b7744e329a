"""One source of truth: ``schema.json`` is the engine's ``remotemedia schema`` output, every file
generated from it (``scripts/gen.py``: the node stubs, the docs tables) is up to date, a new param
reaches those files only through regeneration, and the Python tables are read from it."""

import ast
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys

import pytest

import remotemedia
from remotemedia import _runtime, errors, nodes
from remotemedia._schema import SCHEMA

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GEN = os.path.join(REPO, "scripts", "gen.py")


def load_gen():
    spec = importlib.util.spec_from_file_location("gen", GEN)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def test_every_generated_file_is_what_the_generator_writes():
    p = subprocess.run([sys.executable, GEN, "--check"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"{p.stdout}{p.stderr}"


def test_a_new_param_reaches_the_stub_and_the_docs_only_through_regeneration(tmp_path):
    gen = load_gen()
    for rel in gen.outputs(SCHEMA, REPO):
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        shutil.copy(os.path.join(REPO, rel), tmp_path / rel)
    shutil.copy(os.path.join(REPO, gen.NODES_PY), tmp_path / gen.NODES_PY)
    schema = json.loads(json.dumps(SCHEMA))
    gain = next(t for t in schema["node_types"] if t["name"] == "GainNode")
    gain["params"].append({"name": "ramp_ms", "kind": "int", "min": 0, "max": 1000, "required": False,
                           "default": 5, "doc": "fade the gain in over this long"})
    modified = tmp_path / "schema.json"
    modified.write_text(json.dumps(schema))

    # The checked-in outputs no longer match: the drift check names the stub and the params table.
    assert set(gen.generate(str(modified), str(tmp_path), check=True)) == {gen.STUB, gen.NODES_MD}
    gen.generate(str(modified), str(tmp_path), check=False)
    assert gen.generate(str(modified), str(tmp_path), check=True) == []
    stub = (tmp_path / gen.STUB).read_text(encoding="utf-8")
    assert "gain_db: float = 0.0, ramp_ms: int = 5, *" in stub
    docs = (tmp_path / gen.NODES_MD).read_text(encoding="utf-8")
    assert "| `ramp_ms` | no | integer 0..=1000 | `5` | fade the gain in over this long |" in docs
    # Nothing else in the docs moved.
    before = open(os.path.join(REPO, gen.NODES_MD), encoding="utf-8").read().splitlines()
    assert sorted(set(docs.splitlines()) - set(before)) == ["| `ramp_ms` | no | integer 0..=1000 | `5` | fade the gain in over this long |"]


def test_a_new_param_or_node_reaches_the_python_builders_only_through_the_schema(monkeypatch):
    # The builder classes read their signature, ports and defaults from the schema: a param added
    # to GainNode's Rust params struct (hence to schema.json) is a param of the Python builder,
    # and a new node type gets a builder of its own, with no edit to nodes.py.
    from remotemedia._pure import schema as pure_schema

    schema = json.loads(json.dumps(SCHEMA))
    gain = next(t for t in schema["node_types"] if t["name"] == "GainNode")
    gain["params"].append({"name": "ramp_ms", "kind": "int", "min": 0, "max": 1000, "required": False,
                           "default": 5, "doc": "fade the gain in over this long"})
    schema["node_types"].append({**gain, "name": "NewNode", "doc": "a node added in Rust", "outputs": ["audio", "level"]})
    types = {d["name"]: pure_schema.NodeTypeSpec.from_dict(d) for d in schema["node_types"]}
    monkeypatch.setattr(pure_schema, "builtin_types", lambda: types)

    class GainNode(nodes._SchemaParams):
        _positional = True

    assert list(inspect.signature(GainNode).parameters) == ["gain_db", "ramp_ms", "node_id", "runtime_hint"]
    assert GainNode(6.0, node_id="g").to_manifest() == {"id": "g", "type": "GainNode", "params": {"gain_db": 6.0, "ramp_ms": 5}}
    new = nodes._builder("NewNode")
    assert new.__doc__ == "a node added in Rust" and new.outputs == ["audio", "level"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in inspect.signature(new).parameters.values())
    assert new(ramp_ms=7, node_id="n").to_manifest() == {"id": "n", "type": "NewNode", "params": {"ramp_ms": 7}}


def test_builders_write_array_and_mapping_params_as_the_manifest_holds_them():
    import types

    import numpy as np

    clip = nodes.DenoiseNode(noise_clip=np.arange(4, dtype=np.int16).reshape(4, 1), node_id="d").params["noise_clip"]
    assert clip == [0.0, 1.0, 2.0, 3.0] and all(type(x) is float for x in clip)
    weights = nodes.LoudnessNode(channel_weights=np.array([1, 1, 0]), true_peak=np.bool_(False), node_id="l").params
    assert weights["channel_weights"] == [1.0, 1.0, 0.0] and weights["true_peak"] is False
    bands = nodes.FilterNode((types.MappingProxyType({"type": "lowpass", "freq_hz": 1000}),), node_id="f").params["bands"]
    assert bands == [{"type": "lowpass", "freq_hz": 1000}] and type(bands[0]) is dict
    assert nodes.VADNode.outputs == ["audio", "segments", "frames"] and nodes.MixNode.inputs == "any"


def test_a_node_with_params_and_no_docs_block_is_an_error(tmp_path):
    gen = load_gen()
    schema = json.loads(json.dumps(SCHEMA))
    schema["node_types"].append({**schema["node_types"][0], "name": "NewNode"})
    with pytest.raises(SystemExit, match="generated: params NewNode"):
        gen.nodes_md(schema, open(os.path.join(REPO, gen.NODES_MD), encoding="utf-8").read())


def test_the_stub_matches_the_builder_classes():
    tree = ast.parse(open(os.path.join(REPO, "python", "remotemedia", "nodes.pyi"), encoding="utf-8").read())
    exported = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__")
    assert [e.value for e in exported.value.elts] == list(nodes.__all__[:5]) + [t["name"] for t in SCHEMA["node_types"]] + ["BUILTIN_TYPES"]
    assert set(ast.literal_eval(exported.value)) == set(nodes.__all__)
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in nodes.BUILTIN_TYPES):
        init = next(f for f in cls.body if isinstance(f, ast.FunctionDef))
        real = inspect.signature(nodes.BUILTIN_TYPES[cls.name].__init__).parameters
        positional = [a.arg for a in init.args.args if a.arg != "self"]
        keyword = [a.arg for a in init.args.kwonlyargs]
        assert sorted(positional + keyword) == sorted(n for n in real if n != "self"), cls.name
        for name in keyword:
            assert real[name].kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD), (cls.name, name)
        for name in positional:
            assert real[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (cls.name, name)


def test_python_tables_are_read_from_the_schema():
    from remotemedia import limits
    from remotemedia._pure import reliability, validate

    assert limits.LIMITS == SCHEMA["limits"]
    assert validate.CONFIG_FIELDS == tuple(f["name"] for f in SCHEMA["config"])
    assert validate._CONFIG_DEFAULTS["circuit_breaker_cooldown_ms"] == 30000
    assert reliability._DEFAULTS == {f["name"]: f["default"] for f in SCHEMA["config"] if f["per_node"]}
    assert set(validate.RELIABILITY_FIELDS) == {"retry_policy", "max_retries", "retry_base_delay_ms", "retry_max_delay_ms",
                                                "retry_jitter", "circuit_breaker_threshold", "circuit_breaker_cooldown_ms"}
    for kind in SCHEMA["error_kinds"]:
        assert issubclass(getattr(errors, kind["exception"]), errors.RemoteMediaError), kind


@pytest.mark.requires_native
def test_schema_json_is_the_native_registry():
    # The node types and limits the built extension holds are the checked-in schema's.
    native = _runtime.native_module()
    assert json.loads(native.node_types_json()) == SCHEMA["node_types"]
    assert json.loads(native.limits_json()) == SCHEMA["limits"]
    assert native.version() == SCHEMA["engine_version"]


@pytest.mark.requires_native
def test_an_engine_switch_with_an_unknown_value_is_refused_by_name():
    # Read when the pool starts, in a fresh process (pools are shared per process).
    code = ("import numpy as np\n"
            "from remotemedia import GainNode, InputError, Pipeline\n"
            "try:\n"
            "    Pipeline([GainNode(6.0)], runtime_hint='rust').run_sync((np.zeros(160, np.float32), 16000))\n"
            "except InputError as e:\n"
            "    print(e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "REMOTEMEDIA_PIN_WORKERS": "maybe"})
    assert p.returncode == 0, p.stderr
    assert 'environment variable REMOTEMEDIA_PIN_WORKERS="maybe": expected 1, true, on, 0, false or off (or unset)' in p.stdout, p.stdout
    assert [s["name"] for s in SCHEMA["engine_switches"]][:2] == ["REMOTEMEDIA_PIN_WORKERS", "REMOTEMEDIA_REPLY_SPIN_US"]

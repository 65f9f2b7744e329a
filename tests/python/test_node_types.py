"""The built-in node schemas: schema.json's node types, the builder classes and the native registry agree."""

import inspect
import json

import pytest

from remotemedia import _runtime
from remotemedia._schema import SCHEMA
from remotemedia._pure.schema import builtin_types
from remotemedia.nodes import BUILTIN_TYPES

def test_every_builtin_has_a_builder_class():
    assert set(builtin_types()) == set(BUILTIN_TYPES)


@pytest.mark.parametrize("name", sorted(BUILTIN_TYPES))
def test_builder_signature_matches_the_schema(name):
    spec = builtin_types()[name]
    sig = inspect.signature(BUILTIN_TYPES[name].__init__)
    params = [p for p in sig.parameters.values() if p.name not in ("self", "node_id", "runtime_hint")]
    assert [p.name for p in params] == [p.name for p in spec.params]
    for p in params:
        s = spec.param(p.name)
        if s.required:
            assert p.default is inspect.Parameter.empty, p.name
        else:
            assert p.default == s.default, p.name


@pytest.mark.requires_native
def test_node_types_json_is_the_native_registry():
    assert json.loads(_runtime.native_module().node_types_json()) == SCHEMA["node_types"]

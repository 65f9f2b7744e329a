"""The type stubs of the native module name exactly what the built module has, with the same parameters."""

import ast
import inspect
from pathlib import Path

import pytest

import remotemedia

from conftest import require_native

pytestmark = pytest.mark.requires_native

STUB = Path(remotemedia.__file__).with_name("_native.pyi")


def stub_tree():
    return ast.parse(STUB.read_text())


def params(fn: ast.FunctionDef):
    return [a.arg for a in fn.args.args + fn.args.kwonlyargs if a.arg != "self"]


def test_every_stubbed_name_exists_with_the_same_parameters():
    native = require_native()
    for node in stub_tree().body:
        if isinstance(node, ast.FunctionDef):
            obj = getattr(native, node.name)
            assert list(inspect.signature(obj).parameters) == params(node), node.name
        elif isinstance(node, ast.ClassDef):
            cls = getattr(native, node.name)
            for m in node.body:
                if not isinstance(m, ast.FunctionDef):
                    continue
                assert hasattr(cls, m.name), f"{node.name}.{m.name}"
                if any(isinstance(d, ast.Name) and d.id == "property" for d in m.decorator_list):
                    continue
                target = cls if m.name == "__init__" else getattr(cls, m.name)
                sig = inspect.signature(target)
                got = [p for p in sig.parameters if p != "self"]
                assert got == params(m), f"{node.name}.{m.name}: module has {got}"


def test_every_public_name_of_the_module_is_stubbed():
    native = require_native()
    stubbed = {n.name for n in stub_tree().body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    public = {n for n in dir(native) if not n.startswith("_")}
    assert public == stubbed

"""``examples/property_test_my_graph.py`` (the property tests a user would
write with ``trigraph.testing``) runs and passes."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "property_test_my_graph.py"


def test_property_test_example_passes() -> None:
    spec = importlib.util.spec_from_file_location("property_test_my_graph", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that its string annotations resolve
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    tests = [fn for name, fn in vars(module).items() if name.startswith("test_")]
    assert all(inspect.isfunction(fn) for fn in tests)
    assert len(tests) == 3
    for test in tests:
        test()

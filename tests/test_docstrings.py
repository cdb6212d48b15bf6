"""The runnable examples in the docstrings (one per detector) run and hold."""

import doctest
import importlib
import pkgutil

import pytest

import rescue

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(rescue.__path__, "rescue.") if "tune_sink" not in m.name
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0

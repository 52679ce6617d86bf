"""The examples in the docstrings run and give what they show."""

import doctest
import importlib
import pkgutil

import pytest

import cryokit

MODULES = sorted(m.name for m in pkgutil.walk_packages(cryokit.__path__, "cryokit.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0

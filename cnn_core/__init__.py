"""CNN Lab core: configurable LeNet-5, shape arithmetic, data, training, runs and explanations.

This package never imports Streamlit: everything the app shows can be produced from a
Python shell or the ``python -m cnn_core`` command line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from typing import Any

__version__ = "0.1.0"


def lazy_exports(package: str, module: str, names: Collection[str]) -> Callable[[str], Any]:
    """A package's ``__getattr__`` (PEP 562) that loads ``module`` on the first use of one of ``names``, so the
    package's other modules import without what that one needs (torch for ``cnn_core.data``, Captum for
    ``cnn_core.explain``)."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__

"""The optional dependencies of :mod:`cmalign.scale`, imported only when used.

``ray[data]``, ``pyarrow`` and ``faiss-cpu`` come with ``pip install
'cmalign[scale]'``. Nothing else in cmalign needs them: :func:`require`
imports one when a scale command or function runs, and a missing one fails
with :class:`MissingExtraError`, one line that names the extra. Used by every
module of :mod:`cmalign.scale` (``python -m cmalign.scale``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The install line every message names.
INSTALL = "pip install 'cmalign[scale]'"

#: import name -> distribution that provides it
DISTRIBUTIONS = {"ray": "ray[data]", "pyarrow": "pyarrow", "faiss": "faiss-cpu"}


class MissingExtraError(ImportError):
    """A dependency of the ``scale`` extra is not installed."""


def require(module: str) -> ModuleType:
    """Import ``module`` (e.g. ``"ray.data"``), or fail with one line naming the extra.

    Raises
    ------
    MissingExtraError
        ``"cmalign.scale needs faiss-cpu, which is not installed: pip install
        'cmalign[scale]'"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        if err.name is not None and err.name.split(".")[0] != top:
            raise  # the package is there but one of its own imports failed
        dist = DISTRIBUTIONS.get(top, top)
        raise MissingExtraError(
            f"cmalign.scale needs {dist}, which is not installed: {INSTALL}"
        ) from None

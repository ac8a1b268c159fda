"""Small shared helpers: seeding, device choice and embedding validation.

Every lesson's config cell calls :func:`set_seed`; every function that takes
embeddings calls :func:`check_embeddings` so that unnormalised features, NaNs
and zero vectors fail loudly instead of producing silently wrong numbers
(taught in notebooks/01_clip_embeddings.ipynb, "why normalise").
"""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging as hf_logging

NORM_TOLERANCE = 1e-3
#: The repository root (data/ lives here; the package is installed editable).
REPO_ROOT = Path(__file__).resolve().parents[1]


class TruncationWarning(UserWarning):
    """Captions were longer than the model's context and were cut.

    Carries its data, so callers count without reading the message:
    ``indices`` (the captions cut), ``count`` (how many) and ``limit`` (tokens).
    """

    def __init__(self, message: str, *, indices: Sequence[int] = (), limit: int = 0):
        super().__init__(message)
        self.indices = list(indices)
        self.count = len(self.indices)
        self.limit = limit


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) random generators.

    Python's hash seed (``PYTHONHASHSEED``) cannot be changed once the
    interpreter runs, so it is not touched; nothing in cmalign depends on
    ``hash()`` order.

    Parameters
    ----------
    seed : int
        The seed. Lessons use 0.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def quiet_transformers(notices: bool = False) -> Iterator[None]:
    """Hide transformers' chatter while loading or building a model.

    Always hides the weight-loading progress bar. Unless ``notices`` is True,
    also hides transformers' warnings, such as "requires torchvision, falling
    back to the PIL image processor" (identical preprocessing) or "slow image
    processor", which lessons would otherwise show in red: use it around
    processors only, never around weights (missing-weight warnings matter).
    Errors still raise."""
    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    if not notices:
        hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torchvision.*")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def default_device() -> str:
    """``$CMALIGN_DEVICE`` when set, else ``"cuda"``, Apple's ``"mps"`` or ``"cpu"``,
    whichever is usable first."""
    if os.environ.get("CMALIGN_DEVICE"):
        return os.environ["CMALIGN_DEVICE"]
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_embeddings(
    emb: torch.Tensor, name: str, normalised: bool = True, allow_empty: bool = False
) -> torch.Tensor:
    """Validate a 2-D embedding matrix and return it (1-D input becomes one row).

    Parameters
    ----------
    emb : torch.Tensor of shape (n, dim)
        The embeddings to check.
    name : str
        Argument name used in error messages, e.g. ``"image_emb"``.
    normalised : bool
        Also require every row to have unit L2 norm (within 1e-3).
    allow_empty : bool
        Accept zero rows.

    Raises
    ------
    TypeError
        If ``emb`` is not a floating-point tensor.
    ValueError
        If it is not 2-D, is empty, holds NaN/inf, holds a zero vector or (with
        ``normalised``) a row whose norm is not 1. The message names the row.
    """
    if not isinstance(emb, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(emb).__name__}")
    if not emb.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {emb.dtype}")
    if emb.ndim == 1:
        emb = emb.unsqueeze(0)
    if emb.ndim != 2:
        raise ValueError(f"{name} must have shape (n, dim), got {tuple(emb.shape)}")
    if emb.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (0 rows)")
    if emb.shape[0] == 0:
        return emb
    norms = torch.linalg.vector_norm(emb.detach().float(), dim=1)
    bad = ~torch.isfinite(norms)
    if bad.any():
        row = int(bad.nonzero()[0])
        raise ValueError(f"{name} row {row} contains NaN or inf")
    zero = norms == 0
    if zero.any():
        row = int(zero.nonzero()[0])
        raise ValueError(f"{name} row {row} is a zero vector (cannot be normalised)")
    if normalised:
        off = (norms - 1).abs() > NORM_TOLERANCE
        if off.any():
            row = int(off.nonzero()[0])
            raise ValueError(
                f"{name} is not L2-normalised: row {row} has norm "
                f"{float(norms[row]):.4g}. Use torch.nn.functional.normalize(x, dim=-1) "
                "first (cosine similarity needs unit vectors)."
            )
    return emb

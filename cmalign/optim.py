"""The optimiser's pieces for contrastive training: schedule, freezing, weight decay.

:func:`warmup_cosine` (linear warm-up, then cosine decay to 0, as open_clip),
:func:`freeze_all_but` (train only the projections, say, of a pretrained
CLIP) and :func:`param_groups` (AdamW without decay on gains, biases,
embeddings and the temperature; open_clip's grouping, which decays the 2-D
embeddings, with ``decay_embeddings=True``). Used by :func:`cmalign.train.fit`; taught in
notebooks/03_training_alignment.ipynb.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import torch
from transformers import CLIPModel


def warmup_cosine(steps: int, warmup: int) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up over ``warmup`` steps, then cosine to 0."""

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return schedule


@contextlib.contextmanager
def freeze_all_but(
    model: CLIPModel, train_only: Sequence[str] | None
) -> Iterator[list[torch.nn.Parameter]]:
    """Freeze every parameter whose name contains none of ``train_only``; unfreeze on exit.

    ``train_only=None`` freezes nothing. Yields the frozen parameters.
    """
    frozen = [
        param
        for name, param in model.named_parameters()
        if train_only is not None
        and not any(key in name for key in train_only)
        and param.requires_grad
    ]
    for param in frozen:
        param.requires_grad_(False)
    try:
        yield frozen
    finally:
        for param in frozen:
            param.requires_grad_(True)


def _open_clip_excludes(name: str, param: torch.nn.Parameter) -> bool:
    """open_clip's rule (``open_clip_train/main.py``: ``exclude = lambda n, p:
    p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or 'logit_scale' in n``)."""
    return param.ndim < 2 or any(k in name for k in ("bn", "ln", "bias", "logit_scale"))


def param_groups(
    model: CLIPModel, weight_decay: float, *, decay_embeddings: bool = False
) -> list[dict]:
    """AdamW groups of the trainable parameters: one decayed, one not.

    Never decayed: tensors with fewer than 2 dimensions (LayerNorm gains,
    biases, the class embedding) and the temperature ``logit_scale``. By
    default (``decay_embeddings=False``) every parameter whose name contains
    "embedding" is not decayed either: the token and position embeddings and
    the patch embedding (a convolution's kernel). That is *not* open_clip's
    grouping, whatever an earlier docstring said: open_clip excludes only
    tensors with ndim < 2 and names containing "bn", "ln", "bias" or
    "logit_scale", so it decays the 2-D token and position embeddings and the
    patch convolution (as Hugging Face's Trainer and nanoGPT do; minGPT does
    not decay embeddings). The default is kept because the shipped toy CLIP
    was trained with it (``python -m cmalign.toy.train`` reproduces it only
    so). ``decay_embeddings=True`` gives open_clip's grouping exactly.

    Parameters
    ----------
    model : CLIPModel
        Only parameters with ``requires_grad`` are grouped (frozen ones are left out).
    weight_decay : float
        AdamW's decay for the first group.
    decay_embeddings : bool
        True: group as open_clip does.

    Returns
    -------
    list of two dicts for ``torch.optim.AdamW``: ``{"params", "weight_decay"}``
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if decay_embeddings:
            plain = _open_clip_excludes(name, param)
        else:
            plain = param.ndim < 2 or "embedding" in name or "logit_scale" in name
        (no_decay if plain else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]

"""The optimiser's pieces for contrastive training: schedule, freezing, weight decay.

:func:`warmup_cosine` (linear warm-up, then cosine decay to 0, as open_clip),
:func:`freeze_all_but` (train only the projections, say, of a pretrained
CLIP) and :func:`param_groups` (AdamW without decay on gains, biases,
embeddings and the temperature). Used by :func:`cmalign.train.fit`; taught in
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


def param_groups(model: CLIPModel, weight_decay: float) -> list[dict]:
    """AdamW groups of the trainable parameters; no decay on gains, biases,
    embeddings and the temperature (as in open_clip)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        plain = param.ndim < 2 or "embedding" in name or "logit_scale" in name
        (no_decay if plain else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]

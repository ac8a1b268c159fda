"""Fine-tune a CLIP with hard negatives (NegCLIP) on a stream of fresh toy scenes.

Every step draws a fresh batch of ordinary scenes (so retrieval is kept) and
a batch of :func:`~cmalign.toy.negatives.hard_pairs` (two objects, a fully
stated caption and its colour-swapped and relation-reversed negatives). The
negatives enter ``clip_loss(..., hard_negatives=...)`` through
:func:`cmalign.train.train_step`; which captions fit which images is decided
by the world, so a negative that happens to describe another image of the
batch counts as a positive there. Fresh data matters: on a fixed set of a
thousand scenes the model memorises them instead of learning word order.
Taught in notebooks/06_hard_negatives.ipynb.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..models import ClipBundle
from ..optim import param_groups, warmup_cosine
from ..prepare import encode_dataset, tokenize_texts
from ..train import train_step
from .negatives import hard_pairs
from .world import make_dataset, relevance_matrix


def finetune_with_negatives(
    bundle: ClipBundle,
    steps: int = 300,
    batch_size: int = 96,
    hard_size: int = 48,
    lr: float = 1e-3,
    seed: int = 0,
    use_negatives: bool = True,
    callback: Callable[[dict], None] | None = None,
) -> dict[str, list[float]]:
    """Train ``bundle.model`` in place; returns the loss per step.

    Parameters
    ----------
    steps, lr
        AdamW steps (no weight decay), 5 % warm-up then cosine decay.
    batch_size, hard_size
        Ordinary scenes and hard-pair scenes per step (each with its caption).
    use_negatives
        False trains on exactly the same images and captions without the
        negatives: the control that shows what the negatives add.
    callback
        ``callback({"step": s, "loss": l})`` after every step.
    """
    model, processor = bundle.model, bundle.processor
    model.train()
    context = model.config.text_config.max_position_embeddings
    optimizer = torch.optim.AdamW(
        param_groups(model, 0.0), lr=lr, betas=(0.9, 0.98), eps=1e-6
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps, max(1, steps // 20))
    )
    history: dict[str, list[float]] = {"step": [], "loss": []}
    start = time.perf_counter()
    for step in range(1, steps + 1):
        plain = make_dataset(batch_size, seed=seed * 1_000_003 + step, split="train")
        scenes, negatives = hard_pairs(hard_size, seed=seed * 1_000_003 + step)
        for key in ("images", "captions", "attributes", "specs"):
            getattr(plain, key).extend(getattr(scenes, key))
        pixels, tokens = encode_dataset(processor, plain, context)
        positives = relevance_matrix(plain.specs, plain.attributes).T  # (images, texts)
        negative_tokens = None
        if use_negatives:
            fits = relevance_matrix(negatives.specs, plain.attributes).T
            positives = torch.cat([positives, fits], dim=1)
            negative_tokens = tokenize_texts(processor, negatives.texts, context)
        device = next(model.parameters()).device
        loss = train_step(
            model,
            optimizer,
            pixels.to(device),
            {k: v.to(device) for k, v in tokens.items()},
            positives.to(device),
            None
            if negative_tokens is None
            else {k: v.to(device) for k, v in negative_tokens.items()},
        )
        scheduler.step()
        history["step"].append(step)
        history["loss"].append(loss)
        if callback is not None:
            callback({"step": step, "loss": loss})
    history["seconds"] = [time.perf_counter() - start]
    model.eval()
    return history

"""Fine-tune a CLIP with hard negatives (NegCLIP) on a stream of fresh toy scenes.

Every step draws a fresh batch of ordinary scenes (so retrieval is kept) and
a batch of :func:`~cmalign.toy.negatives.hard_pairs` (two objects, a fully
stated caption and its colour-swapped and relation-reversed negatives). The
negatives enter ``clip_loss(..., hard_negatives=...)`` through
:func:`cmalign.train.train_step`; which captions fit which images is decided
by the world, so a negative that happens to describe another image of the
batch counts as a positive there. Fresh data matters: on a fixed set of a
thousand scenes the model memorises them instead of learning word order.
``python -m cmalign.toy.negclip`` writes ``data/toy_clip_negclip`` (the
model lesson 06 evaluates) with its ``metrics.json``.
Taught in notebooks/06_hard_negatives.ipynb.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from ..checkpoint import save_clip
from ..embed import embed_images, embed_texts
from ..inputs import encode_dataset, tokenize_texts
from ..metrics import retrieval_metrics
from ..models import ClipBundle, load_clip
from ..train import Batch, train_loop
from ..utils import TruncationWarning
from .negatives import hard_pairs, make_negatives, probe
from .quality import TEST_SEED
from .world import make_dataset, relevance_matrix


def finetune_with_negatives(
    bundle: ClipBundle,
    *,
    steps: int = 300,
    batch_size: int = 96,
    hard_size: int = 48,
    lr: float = 1e-3,
    seed: int = 0,
    use_negatives: bool = True,
    phrasing: str = "forward",
    callback: Callable[[dict], None] | None = None,
) -> dict[str, list[float]]:
    """Train ``bundle.model`` in place on fresh scenes; returns the history.

    Each step's :class:`~cmalign.train.Batch` is made here and handed to the
    one training loop, :func:`cmalign.train.train_loop`.

    Parameters
    ----------
    steps, lr
        AdamW steps (no weight decay), 5 % warm-up then cosine decay.
    batch_size, hard_size
        Ordinary scenes and hard-pair scenes per step (each with its caption).
    phrasing
        How hard pairs are worded (:func:`~cmalign.toy.negatives.hard_pairs`):
        "forward" ("A to the left of B"), "backward" or "mixed".
    use_negatives
        False trains on exactly the same images and captions without the
        negatives: the control that shows what the negatives add.
    callback
        ``callback(record)`` after every step (see :func:`~cmalign.train.train_loop`).

    Returns
    -------
    dict of lists
        :func:`~cmalign.train.train_loop`'s history (``step``, ``loss``, ``scale``,
        ``lr``, ``seconds``).
    """
    processor = bundle.processor
    context = bundle.model.config.text_config.max_position_embeddings
    truncated = 0  # steps whose batch had captions cut at the context length

    def next_batch(step: int) -> Batch:
        nonlocal truncated
        plain = make_dataset(batch_size, seed=seed * 1_000_003 + step, split="train")
        scenes, negatives = hard_pairs(
            hard_size, seed=seed * 1_000_003 + step, phrasing=phrasing
        )
        for key in ("images", "captions", "attributes", "specs"):
            getattr(plain, key).extend(getattr(scenes, key))
        with warnings.catch_warnings(record=True) as caught:  # one summary, not one per step
            warnings.simplefilter("always")
            pixels, tokens = encode_dataset(processor, plain, context_length=context)
        truncated += any(issubclass(w.category, TruncationWarning) for w in caught)
        positives = relevance_matrix(plain.specs, plain.attributes).T  # (images, texts)
        negative_tokens = None
        if use_negatives:
            fits = relevance_matrix(negatives.specs, plain.attributes).T
            positives = torch.cat([positives, fits], dim=1)
            negative_tokens = tokenize_texts(
                processor, negatives.texts, context_length=context
            )
        return Batch(pixels, tokens, positives, negative_tokens)

    history = train_loop(
        bundle.model,
        next_batch,
        steps=steps,
        lr=lr,
        warmup=max(1, steps // 20),
        weight_decay=0.0,
        progress=False,
        callback=callback,
    )
    if truncated:
        warnings.warn(
            f"in {truncated} of {steps} steps some captions exceeded the "
            f"{context}-token context and were cut (the world's longest captions)",
            TruncationWarning,
            stacklevel=2,
        )
    return history


def evaluate_negatives(
    bundle: ClipBundle, n: int = 1000, seed: int = TEST_SEED
) -> dict:
    """Probes and retrieval of a model on fresh data (never used in training).

    Returns
    -------
    dict
        ``forward_probe_*`` (lesson 05's probe: "A to the left of B" against its
        colour-swapped and relation-reversed forms, on ``n // 2`` scenes),
        ``backward_probe_*`` (the same phrased "B to the right of A"),
        ``varied_probe_*`` (:func:`~cmalign.toy.negatives.make_negatives` on the
        world's own captions) and text->image / image->text R@1 on ``n`` pairs.
    """
    results: dict[str, float] = {}
    for phrasing in ("forward", "backward"):
        scenes, negatives = hard_pairs(
            n // 2, seed=seed, split="test", phrasing=phrasing
        )
        for key, value in probe(bundle, scenes, negatives).items():
            results[f"{phrasing}_{key}"] = value
    data = make_dataset(n, seed=seed, split="test")
    for key, value in probe(bundle, data, make_negatives(data, seed=seed)).items():
        results[f"varied_{key}"] = value
    image_emb = embed_images(bundle, data.images, progress=False)
    text_emb = embed_texts(bundle, data.captions, progress=False)
    metrics = retrieval_metrics(image_emb, text_emb, relevance=data.relevance())
    for key in ("text_to_image_R@1", "image_to_text_R@1"):
        results[key] = metrics[key]
    return results


def main(argv: list[str] | None = None) -> dict:
    """``python -m cmalign.toy.negclip``: fine-tune the shipped toy CLIP with hard
    negatives (forward phrasing first, then mixed) and save it with its metrics."""
    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/toy_clip_negclip")
    parser.add_argument("--base", default="toy", help="model to start from")
    parser.add_argument("--forward-steps", type=int, default=400)
    parser.add_argument("--mixed-steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--eval-n", type=int, default=1000, help="fresh pairs in metrics.json"
    )
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    bundle = load_clip(args.base, device="cpu")
    start = time.perf_counter()
    finetune_with_negatives(
        bundle, steps=args.forward_steps, batch_size=64, hard_size=64, lr=args.lr, seed=0
    )
    finetune_with_negatives(
        bundle,
        steps=args.mixed_steps,
        batch_size=64,
        hard_size=64,
        lr=args.lr,
        seed=1,
        phrasing="mixed",
    )
    seconds = time.perf_counter() - start
    save_clip(bundle.model, bundle.processor, args.out)
    metrics = evaluate_negatives(bundle, n=args.eval_n)
    metrics["train_seconds"] = seconds
    metrics["command"] = "python -m cmalign.toy.negclip " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "eval_n"
    )
    (Path(args.out) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()

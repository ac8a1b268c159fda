"""Train, evaluate and save the project's small CLIP on the toy world.

    python -m cmalign.train_toy --out data/toy_clip

builds a fresh :func:`cmalign.toymodel.build_toy_clip`, trains it with
:func:`cmalign.train.fit` (the project's ``clip_loss``, learnable clamped
temperature), saves it with ``save_pretrained`` and writes ``metrics.json``
(quality on a freshly generated test set) and ``history.json`` beside it.
:func:`evaluate_toy_model` is the quality check that the README, the tests and
notebooks/03_training_alignment.ipynb use.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from . import toyworld
from .embed import class_embeddings, embed_images, embed_texts
from .metrics import retrieval_metrics, zero_shot_accuracy
from .models import ClipBundle, load_clip
from .toymodel import build_toy_clip
from .train import fit

COLOR_TEMPLATES = ("a {} object", "a {} shape", "a photo of a {} object")
SHAPE_TEMPLATES = ("a {}", "a photo of a {}", "there is a {}")
TEST_SEED = 20_261_127  # never used for training data


def evaluate_toy_model(
    bundle: ClipBundle, n: int = 1000, seed: int = TEST_SEED
) -> dict[str, float]:
    """Quality of a model on freshly generated toy data, scored with relevance.

    Returns R@1/5/10 both ways on the ``"test"`` split and on the
    ``"heldout_combos"`` split, and zero-shot colour / shape accuracy on the
    single-object test images.
    """
    results: dict[str, float] = {}
    for split in ("test", "heldout_combos"):
        data = toyworld.make_dataset(n, seed=seed, split=split)
        image_emb = embed_images(bundle, data.images, progress=False)
        text_emb = embed_texts(bundle, data.captions, progress=False)
        metrics = retrieval_metrics(image_emb, text_emb, relevance=data.relevance())
        prefix = "" if split == "test" else "heldout_"
        results.update({prefix + k: v for k, v in metrics.items()})
        if split == "test":
            single = [
                i for i, a in enumerate(data.attributes) if len(a["objects"]) == 1
            ]
            for key, names, templates in (
                ("color", list(toyworld.COLORS), COLOR_TEMPLATES),
                ("shape", toyworld.SHAPES, SHAPE_TEMPLATES),
            ):
                labels = [
                    names.index(data.attributes[i]["objects"][0][key]) for i in single
                ]
                classes = class_embeddings(bundle, names, templates)
                results[f"zero_shot_{key}_accuracy"] = zero_shot_accuracy(
                    image_emb[single], classes, labels
                )
    return results


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/toy_clip", help="output folder")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--n-train", type=int, default=30_000, help="training images")
    parser.add_argument("--captions-per-image", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    model, processor = build_toy_clip(seed=args.seed)
    train = toyworld.make_dataset(
        args.n_train,
        seed=args.seed,
        split="train",
        captions_per_image=args.captions_per_image,
    )
    monitor = toyworld.make_dataset(500, seed=args.seed + 1, split="test")
    history = fit(
        model,
        processor,
        train,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_dataset=monitor,
        eval_every=args.eval_every,
        seed=args.seed,
        device=args.device,
    )
    out = Path(args.out)
    model.to("cpu").save_pretrained(out)
    processor.save_pretrained(out)
    metrics = evaluate_toy_model(load_clip(str(out), device="cpu"))
    metrics["train_seconds"] = time.perf_counter() - start
    metrics["command"] = "python -m cmalign.train_toy " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "device"
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "history.json").write_text(json.dumps(history))
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()

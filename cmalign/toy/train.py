"""Train, evaluate and save the project's small CLIP on the toy world.

    python -m cmalign.toy.train --out data/toy_clip

builds a fresh :func:`cmalign.toy.model.build_toy_clip`, trains it with
:func:`cmalign.train.fit` (the project's ``clip_loss``, learnable clamped
temperature), saves it in the Hugging Face format (:func:`cmalign.checkpoint.save_clip`)
and writes ``metrics.json`` (:func:`cmalign.toy.quality.evaluate_toy_model`
on freshly generated data) and ``history.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..checkpoint import save_clip
from ..models import load_clip
from ..train import fit
from ..utils import default_device
from .model import build_toy_clip
from .quality import evaluate_toy_model
from .world import make_dataset


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/toy_clip", help="output folder")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--n-train", type=int, default=30_000, help="training images")
    parser.add_argument("--captions-per-image", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument(
        "--eval-n", type=int, default=1000, help="fresh pairs per split in metrics.json"
    )
    parser.add_argument(
        "--device",
        default=default_device(),
        help="$CMALIGN_DEVICE, else cuda, mps or cpu, whichever is usable first",
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    model, processor = build_toy_clip(seed=args.seed)
    train = make_dataset(
        args.n_train,
        seed=args.seed,
        split="train",
        captions_per_image=args.captions_per_image,
    )
    monitor = make_dataset(500, seed=args.seed + 1, split="test")
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
    save_clip(model.to("cpu"), processor, out)
    metrics = evaluate_toy_model(load_clip(str(out), device="cpu"), n=args.eval_n)
    metrics["train_seconds"] = time.perf_counter() - start
    metrics["command"] = "python -m cmalign.toy.train " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("device", "eval_n")
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "history.json").write_text(json.dumps(history))
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()

"""Evaluate any CLIP on the standard benchmarks from the command line.

    python -m cmalign.evaluate retrieval --model openai/clip-vit-base-patch32 \\
        --dataset flickr30k --root DIR [--split test] [--out results.json] [--report DIR]
    python -m cmalign.evaluate retrieval|zeroshot --model M --dataset webdataset --root DIR
        (CLIP_benchmark's webdataset shards: cmalign.scale.wds_benchmark)
    python -m cmalign.evaluate zeroshot --model ID_OR_PATH --root IMAGEFOLDER \\
        [--classnames FILE] [--templates openai|simple|FILE] [--out results.json]

Retrieval prints Recall@1/5/10 both ways under CLIP_benchmark's names
(:mod:`cmalign.evaluate.clip_benchmark`, ties broken by index order) and under this
library's strict names (:mod:`cmalign.metrics`, ties count against the
query), with the number of queries that had a tie, mean/median rank, MRR,
the protocol in words, timing, and the published number where the model and
dataset are a known pair. Zero-shot prints acc1/acc5/mean per-class recall
and the accuracy of each class. ``--report DIR`` writes an HTML page of the
failures (:mod:`cmalign.evaluate.report`). Image embeddings are cached per file
(``--cache-dir``, resumable); metrics run in chunks.
The module passes 300 lines because it is the whole command in one place:
its parser, both sub-commands and the published reference rows.
Taught in notebooks/05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from ..data import CaptionSet, load_caption_folder
from ..embed import class_embeddings, embed_images, embed_texts
from ..geometry import modality_gap
from ..metrics import rank_summary, retrieval_ranks
from ..models import load_clip
from .clip_benchmark import clip_benchmark_recall, clip_benchmark_zeroshot
from .formats import (
    load_coco_captions,
    load_image_folder,
    load_karpathy,
    load_templates,
)
from .report import format_table, write_retrieval_report, write_zeroshot_report

#: Published R@1 (CLIP_benchmark protocol) of known model-dataset pairs, Karpathy
#: test splits: open_clip's retrieval results table (docs/openclip_retrieval_results.csv,
#: github.com/mlfoundations/open_clip). SigLIP: its row "ViT-B-16-SigLIP, webli", the
#: big_vision B/16-224 WebLI English weights that google/siglip-base-patch16-224
#: holds, evaluated through open_clip's tokenizer and preprocessing. DataComp: row
#: "ViT-B-32, datacomp_xl_s13b_b90k", the weights of that hf-hub repo.
_SIGLIP_B16 = {
    "flickr30k": {"image_retrieval_recall@1": 0.7468, "text_retrieval_recall@1": 0.8910},
    "coco": {"image_retrieval_recall@1": 0.4778, "text_retrieval_recall@1": 0.6574},
}
_DATACOMP_B32 = {
    "flickr30k": {"image_retrieval_recall@1": 0.6108, "text_retrieval_recall@1": 0.7900},
    "coco": {"image_retrieval_recall@1": 0.3714, "text_retrieval_recall@1": 0.5354},
}
PUBLISHED = {
    **{("google/siglip-base-patch16-224", d): r for d, r in _SIGLIP_B16.items()},
    **{
        (prefix + "laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K", d): r
        for d, r in _DATACOMP_B32.items()
        for prefix in ("", "hf-hub:")
    },
    ("openai/clip-vit-base-patch32", "flickr30k"): {
        "image_retrieval_recall@1": 0.588,
        "text_retrieval_recall@1": 0.789,
    },
    ("openai/clip-vit-base-patch32", "coco"): {
        "image_retrieval_recall@1": 0.304,
        "text_retrieval_recall@1": 0.501,
    },
}
ANNOTATIONS = {"flickr30k": "dataset_flickr30k.json", "coco": "dataset_coco.json"}
RETRIEVAL_PROTOCOL = (
    "Each caption is a text->image query whose only relevant image is its own; "
    "each image is an image->text query, a hit at K when any of its captions is "
    "in the top K. image_retrieval_recall@K (text->image) and "
    "text_retrieval_recall@K (image->text) are CLIP_benchmark's: ties broken by "
    "torch.topk's index order. text_to_image_R@K / image_to_text_R@K and the ranks "
    "are strict: an irrelevant item that ties the best relevant one counts "
    "against the query ({ties} queries had such a tie)."
)


def default_workers() -> int:
    """Decoding processes: none on a small machine, up to 8 on a large one."""
    cores = os.cpu_count() or 1
    return 0 if cores <= 4 else min(8, cores // 2)


def load_retrieval_data(
    dataset: str, root: str | Path, split: str = "test", annotations: str | None = None
) -> CaptionSet:
    """Images and captions of ``dataset`` ("flickr30k", "coco" or "captions")."""
    root = Path(root)
    if dataset == "webdataset":  # CLIP_benchmark's shards (cmalign.scale.wds_benchmark)
        from ..scale.wds_benchmark import load_wds_retrieval

        return load_wds_retrieval(root, split=split)
    if dataset == "captions":
        return load_caption_folder(annotations or root)
    if dataset not in ANNOTATIONS:
        raise ValueError(
            f"--dataset must be flickr30k, coco or captions, got {dataset!r}"
        )
    path = Path(annotations) if annotations else root / ANNOTATIONS[dataset]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: put the Karpathy split file there or pass --annotations"
        )
    with path.open(encoding="utf-8") as handle:  # sniff the format, not the whole file
        head = handle.read(20_000)
    if dataset == "coco" and '"annotations"' in head and '"sentences"' not in head:
        return load_coco_captions(path, root)  # COCO's own captions_*.json
    return load_karpathy(path, root, split)


def run_retrieval(args: argparse.Namespace) -> dict:
    """Embed, score and report one retrieval benchmark; returns the JSON record."""
    data = load_retrieval_data(args.dataset, args.root, args.split, args.annotations)
    bundle = load_clip(args.model, device=args.device)
    start = time.perf_counter()
    shards = args.dataset == "webdataset"  # images inside tar shards: no file cache
    image_emb = embed_images(
        bundle,
        data.images if shards else [str(p) for p in data.images],
        batch_size=args.batch_size,
        autocast=args.autocast,
        cache_dir=None if shards else args.cache_dir,
        num_workers=args.workers,
    )
    image_seconds = time.perf_counter() - start
    start = time.perf_counter()
    text_emb = embed_texts(
        bundle, data.captions, batch_size=args.batch_size, cache_dir=args.cache_dir
    )
    text_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ranks = retrieval_ranks(image_emb, text_emb, data.text_to_image)
    metrics = clip_benchmark_recall(image_emb, text_emb, data.text_to_image)
    metrics.update(rank_summary("text_to_image", ranks["text_to_image"], (1, 5, 10)))
    metrics.update(rank_summary("image_to_text", ranks["image_to_text"], (1, 5, 10)))
    metrics["text_to_image_tied_queries"] = int(ranks["text_to_image_tied"].sum())
    metrics["image_to_text_tied_queries"] = int(ranks["image_to_text_tied"].sum())
    metrics["modality_gap"] = modality_gap(image_emb, text_emb).distance
    ties = metrics["text_to_image_tied_queries"] + metrics["image_to_text_tied_queries"]
    result = {
        "task": "zeroshot_retrieval",
        "model": args.model,
        "family": bundle.family,
        "dataset": args.dataset,
        "split": args.split,
        "n_images": len(data.images),
        "n_captions": len(data.captions),
        "duplicate_captions": len(data.captions) - len(set(data.captions)),
        "metrics": metrics,
        "protocol": RETRIEVAL_PROTOCOL.format(ties=ties),
        "published": PUBLISHED.get((args.model, args.dataset), {})
        if args.split == "test"
        else {},
        "timing": {
            "images_seconds": image_seconds,
            "images_per_second": len(data.images) / max(image_seconds, 1e-9),
            "texts_seconds": text_seconds,
            "metrics_seconds": time.perf_counter() - start,
            "device": str(bundle.device),
            "workers": args.workers,
            "autocast": args.autocast,
        },
    }
    if shards:  # samples of the shards left out (no image, no captions), listed
        result["skipped"] = data.skipped
    if args.report:
        result["report"] = str(
            write_retrieval_report(
                args.report, data, image_emb, text_emb, ranks, result
            )
        )
    return result


def run_zeroshot(args: argparse.Namespace) -> dict:
    """Zero-shot classification of an ImageFolder; returns the JSON record."""
    shards = args.dataset == "webdataset"
    if shards:  # CLIP_benchmark's shards; their templates unless --templates says otherwise
        from ..scale.wds_benchmark import load_wds_classification

        images, labels, names, own, skipped = load_wds_classification(
            args.root, split=args.split
        )
        templates = own if own and args.templates == "openai" else load_templates(args.templates)
    else:
        images, labels, names = load_image_folder(args.root, args.classnames)
        templates = load_templates(args.templates)
    bundle = load_clip(args.model, device=args.device)
    start = time.perf_counter()
    image_emb = embed_images(
        bundle,
        images if shards else [str(p) for p in images],
        batch_size=args.batch_size,
        autocast=args.autocast,
        cache_dir=None if shards else args.cache_dir,
        num_workers=args.workers,
    )
    image_seconds = time.perf_counter() - start
    classes = class_embeddings(bundle, names, templates, cache_dir=args.cache_dir)
    logits = bundle.logits(image_emb, classes)  # (n_images, n_classes), the family's
    metrics = clip_benchmark_zeroshot(logits, labels)
    predicted = logits.argmax(dim=1)
    truth = torch.as_tensor(labels)
    per_class = {
        name: float((predicted[truth == c] == c).float().mean())
        for c, name in enumerate(names)
    }
    result = {
        "task": "zeroshot_classification",
        "model": args.model,
        "family": bundle.family,
        "dataset": str(args.root),
        "n_images": len(images),
        "classnames": names,
        "templates": args.templates
        if args.templates in ("openai", "simple")
        else str(args.templates),
        "n_templates": len(templates),
        "metrics": metrics,
        "per_class_accuracy": per_class,
        "protocol": (
            f"Each class is the mean of its {len(templates)} prompt embeddings "
            "(re-normalised); an image is assigned the class of highest score "
            f"({bundle.family}'s logits, in the order of cosine similarity). acc5 "
            "counts the label anywhere in the top 5."
        ),
        "timing": {"images_seconds": image_seconds, "device": str(bundle.device)},
    }
    if shards:
        result["skipped"] = skipped
    if args.report:
        result["report"] = str(
            write_zeroshot_report(
                args.report, images, labels, predicted.tolist(), names, result
            )
        )
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cmalign.evaluate", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("retrieval", "zeroshot"):
        p = sub.add_parser(name)
        p.add_argument(
            "--model",
            required=True,
            help="hub id (CLIP or SigLIP), hf-hub:ORG/REPO (open_clip), folder or 'toy'",
        )
        p.add_argument("--root", required=True, help="dataset folder")
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--autocast", action="store_true", help="bfloat16 autocast")
        p.add_argument("--cache-dir", help="cache image embeddings here (resumable)")
        p.add_argument("--out", help="write the JSON record here")
        p.add_argument("--report", help="write an HTML report into this folder")
        p.add_argument("--device", default=None, help="default: CUDA, MPS or CPU")
        p.add_argument(
            "--workers", type=int, default=default_workers(), help="decoding processes"
        )
        if name == "retrieval":
            p.add_argument(
                "--dataset",
                required=True,
                choices=["flickr30k", "coco", "captions", "webdataset"],
            )
            p.add_argument("--split", default="test")
            p.add_argument(
                "--annotations", help="annotation file (default: under --root)"
            )
        else:
            p.add_argument(
                "--classnames", help="one class name per line, sub-folder order"
            )
            p.add_argument(
                "--dataset",
                default="imagefolder",
                choices=["imagefolder", "webdataset"],
                help="an ImageFolder, or CLIP_benchmark's webdataset shards",
            )
            p.add_argument("--split", default="test", help="webdataset split folder")
            p.add_argument(
                "--templates",
                default="openai",
                help="openai (80), simple (7) or a file",
            )
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    try:
        result = (
            run_retrieval(args) if args.command == "retrieval" else run_zeroshot(args)
        )
    except (OSError, ImportError, ValueError) as err:  # missing files, extras, families
        sys.exit(f"error: {err}")
    print(format_table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return result

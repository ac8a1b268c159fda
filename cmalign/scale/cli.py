"""``python -m cmalign.scale``: embed shards on Ray, index embeddings with FAISS.

    python -m cmalign.scale embed --model M --input PATTERN_OR_DIR --out DIR \\
        [--texts] [--batch-size N] [--dtype float16|float32] [--address ADDRESS]
    python -m cmalign.scale index --embeddings DIR --out INDEX \\
        [--memory 4GB] [--kind auto|flat|ivfpq|hnsw]

``embed`` (:mod:`cmalign.scale.embed_job`) reads webdataset tar shards,
Parquet files, a caption folder or an ImageFolder, and writes Parquet
embeddings plus ``manifest.json``; rerun the same command to resume.
``index`` (:mod:`cmalign.scale.index`) builds the index its rule picks,
tunes it and reports recall against exact search. Without the ``scale``
extra both fail with one line naming ``pip install 'cmalign[scale]'``.
Also ``cmalign scale ...`` (:mod:`cmalign.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .extra import MissingExtraError
from .readers import PARQUET_COLUMNS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cmalign.scale",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    embed = sub.add_parser("embed", help="embed shards on Ray (resumable)")
    embed.add_argument("--model", required=True, help="hub id, local folder, or 'toy'")
    embed.add_argument("--input", required=True,
                       help="shard pattern (shards/{00000..00127}.tar), file or folder")
    embed.add_argument("--out", required=True, help="output folder (rerun to resume)")
    embed.add_argument("--texts", action="store_true", help="embed captions too")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                       help="stored precision (computed in float32)")
    embed.add_argument("--address", help="an existing Ray cluster (default: a local Ray)")
    embed.add_argument("--autocast", action="store_true", help="bfloat16 autocast in the model")
    embed.add_argument("--image-column", default=PARQUET_COLUMNS["image"])
    embed.add_argument("--caption-column", default=PARQUET_COLUMNS["caption"])
    embed.add_argument("--key-column", default=PARQUET_COLUMNS["key"])
    embed.add_argument("--folder-shard-size", type=int, default=1000,
                       help="images per shard of a caption folder or ImageFolder")
    embed.add_argument("--cache-dir", help="Hugging Face hub cache (default: HF_HUB_CACHE)")
    index = sub.add_parser("index", help="build a FAISS index of embeddings")
    index.add_argument("--embeddings", required=True, help="an embed --out folder")
    index.add_argument("--out", required=True, help="index folder to write")
    index.add_argument("--memory", default="4GB", help="RAM budget of the index (4GB)")
    index.add_argument("--kind", choices=["auto", "flat", "ivfpq", "hnsw"], default="auto")
    index.add_argument("--column", default="image_embedding",
                       help="image_embedding or text_embedding")
    index.add_argument("--target-recall", type=float, default=0.95)
    return parser


def run_index(args: argparse.Namespace) -> dict:
    from .extra import require
    from .index import build_index
    from .outputs import MANIFEST, read_embeddings

    require("faiss"), require("pyarrow")  # fail first, in one line, when the extra is missing

    vectors, meta = read_embeddings(args.embeddings, column=args.column)
    manifest_path = Path(args.embeddings) / MANIFEST
    model = {}
    if manifest_path.is_file():
        made = json.loads(manifest_path.read_text())
        model = {k: made.get(k) for k in ("model", "model_key", "dtype")}
    model["column"] = args.column
    print(f"{len(vectors):,} vectors of dim {vectors.shape[1]} from {args.embeddings}")
    return build_index(vectors, args.out, keys=meta["key"], captions=meta["caption"],
                       sources=meta["source"], memory=args.memory, kind=args.kind,
                       target_recall=args.target_recall, model=model)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "embed":
            from .embed_job import embed_shards

            return embed_shards(
                args.model, args.input, args.out, texts=args.texts,
                batch_size=args.batch_size, dtype=args.dtype, address=args.address,
                autocast=args.autocast, image_column=args.image_column,
                caption_column=args.caption_column, key_column=args.key_column,
                folder_shard_size=args.folder_shard_size, cache_dir=args.cache_dir)
        return run_index(args)
    except MissingExtraError as err:
        sys.exit(f"error: {err}")
    except (OSError, ValueError, RuntimeError) as err:  # missing files, bad input, Ray
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()

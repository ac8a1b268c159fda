"""An offline stand-in for ``openai/clip-vit-base-patch32``: real files, random weights.

The hub cannot be reached from the machines this project is tested on, so the
real model's path is proven on a checkpoint that differs from OpenAI's only
in its weight *values*: the published ``config.json`` (legacy token ids, so
transformers' legacy argmax pooling), the old-style
``preprocessor_config.json``, the tokenizer files and OpenAI's own 49,408-token
BPE (``data/openai_clip``, see its README), and seeded random weights of the
right shapes. :func:`build_hub_cache` lays it out as a Hugging Face hub cache::

    <cache>/models--openai--clip-vit-base-patch32/refs/main
    <cache>/models--openai--clip-vit-base-patch32/snapshots/<rev>/...

with either ``pytorch_model.bin`` only (as the repo's main branch is widely
mirrored) or ``model.safetensors``, so that ``HF_HUB_OFFLINE=1
HF_HUB_CACHE=<cache>`` sends ``load_clip("openai/clip-vit-base-patch32")``
through transformers' real cache resolution. Command line::

    python -m cmalign.standin --cache /tmp/hf-standin --layout bin

Used by the slow tests and ``python -m benchmarks.run``. Semantics are not
real (random weights): shapes, preprocessing, tokens and costs are.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel
from transformers.convert_slow_tokenizer import bytes_to_unicode

from .checkpoint import write_bpe_files
from .utils import REPO_ROOT

REPO_ID = "openai/clip-vit-base-patch32"
FILES_DIR = REPO_ROOT / "data" / "openai_clip"
PUBLISHED = (
    "config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
#: A fixed, obviously synthetic commit hash for the stand-in's snapshot.
STANDIN_REVISION = "0" * 32 + "5ca1ab1e"
#: OpenAI's ids for "a photo of a cat" (with <|startoftext|> and <|endoftext|>).
CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]
LAYOUTS = ("bin", "safetensors")


def openai_vocab_and_merges(
    bpe_path: str | Path = FILES_DIR / "bpe_simple_vocab_16e6.txt.gz",
) -> tuple[dict[str, int], list[str]]:
    """OpenAI CLIP's vocabulary and merges, built as its ``SimpleTokenizer`` does.

    Returns
    -------
    vocab : dict token -> id (49,408 entries; ``<|endoftext|>`` is 49407)
    merges : list of "a b" strings (48,894)
    """
    lines = gzip.open(bpe_path, "rt", encoding="utf-8").read().split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    tokens += ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_processor_files(folder: str | Path) -> Path:
    """Write the published config files plus ``vocab.json`` and ``merges.txt``
    (everything but the weights) into ``folder``; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED:
        shutil.copyfile(FILES_DIR / name, folder / name)
    write_bpe_files(folder, *openai_vocab_and_merges())
    return folder


def write_snapshot(
    folder: str | Path, layout: str = "safetensors", seed: int = 0
) -> Path:
    """Write the stand-in checkpoint's files into ``folder``.

    Parameters
    ----------
    layout : {"bin", "safetensors"}
        ``"bin"``: weights only as ``pytorch_model.bin`` (a ``torch.save``'d
        state dict, as the hub repo's main branch has them);
        ``"safetensors"``: only ``model.safetensors``.
    seed : int
        Seed of the random weights.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    folder = write_processor_files(folder)
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig.from_json_file(folder / "config.json"))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if layout == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def snapshot_folder(cache: str | Path, repo_id: str = REPO_ID) -> Path:
    """Create ``refs/main`` for ``repo_id`` in a hub cache; return its snapshot
    folder (not created: the caller fills it), where transformers will look."""
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(STANDIN_REVISION)
    return repo / "snapshots" / STANDIN_REVISION


def build_hub_cache(
    cache: str | Path, layout: str = "safetensors", seed: int = 0
) -> Path:
    """Lay the stand-in out as a hub cache holding ``openai/clip-vit-base-patch32``.

    Returns
    -------
    Path of the snapshot folder. Point ``HF_HUB_CACHE`` at ``cache``.
    """
    return write_snapshot(snapshot_folder(cache), layout, seed)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="hub cache folder to create")
    parser.add_argument("--layout", choices=LAYOUTS, default="bin")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    snapshot = build_hub_cache(args.cache, args.layout, args.seed)
    print(f"stand-in for {REPO_ID} written to {snapshot}")
    print(f"use it with: HF_HUB_OFFLINE=1 HF_HUB_CACHE={args.cache}")
    return snapshot


if __name__ == "__main__":
    main()

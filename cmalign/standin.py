"""Offline stand-ins for three real checkpoints: the published files, random weights.

The hub cannot be reached from the machines this project is tested on, so each
family's real path is proven on a checkpoint that differs from the published
one only in its weight *values* (and, for ``size="tiny"``, in its widths and
depths, shrunk so tests run in seconds: said in each config's name_or_path):

- ``openai/clip-vit-base-patch32`` (CLIP): the published ``config.json`` (legacy
  token ids, so transformers' argmax pooling), the old-style
  ``preprocessor_config.json``, the tokenizer files and OpenAI's own 49,408-token
  BPE (``data/openai_clip``), in ``pytorch_model.bin`` or ``model.safetensors``.
- ``google/siglip-base-patch16-224`` (SigLIP): ``config.json``,
  ``preprocessor_config.json``, ``tokenizer_config.json`` and
  ``special_tokens_map.json`` as published (``data/siglip``, reconstructed from
  the stored hub pages, see its README). Google's ``spiece.model`` cannot ship
  here: a unigram sentencepiece model of the same kind and special ids
  (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2), trained locally by
  :func:`train_siglip_spiece` on the repo's captions (195 pieces instead of
  32,000), stands in; the config's ``vocab_size`` follows it. Its logit scale
  and bias start where SigLIP's training starts (10 and -10), not at
  transformers' zeros.
- ``laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K`` (open_clip only): its published
  ``open_clip_config.json`` (``data/open_clip``) and weights in open_clip's own
  layout (``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``),
  nothing else, as such repos hold.

:func:`build_hub_cache` lays one out as a Hugging Face hub cache
(``<cache>/models--ORG--NAME/refs/main`` + ``snapshots/<rev>/``) so that
``HF_HUB_OFFLINE=1 HF_HUB_CACHE=<cache>`` sends ``load_clip(REPO_ID)`` through
the real cache resolution; :func:`write_snapshot` writes the same files into
any folder. Command line::

    python -m cmalign.standin --cache /tmp/hf-standin [--family siglip] [--size tiny]

Used by the tests and ``python -m benchmarks.run``. Semantics are not real
(random weights): shapes, preprocessing, tokens and costs are.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel

from .checkpoint import openai_vocab_and_merges, write_bpe_files
from .utils import REPO_ROOT, quiet_transformers

__all__ = ["build_hub_cache", "openai_vocab_and_merges", "write_snapshot"]

REPO_ID = "openai/clip-vit-base-patch32"
SIGLIP_REPO_ID = "google/siglip-base-patch16-224"
OPEN_CLIP_REPO_ID = "laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K"
REPO_IDS = {"clip": REPO_ID, "siglip": SIGLIP_REPO_ID, "open_clip": OPEN_CLIP_REPO_ID}
FILES_DIR = REPO_ROOT / "data" / "openai_clip"
SIGLIP_DIR = REPO_ROOT / "data" / "siglip"
OPEN_CLIP_DIR = REPO_ROOT / "data" / "open_clip"
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
SIZES = ("base", "tiny")
#: The shrunk towers of size="tiny" (image size, patch, context and vocabulary kept).
TINY = {
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}


def _save_weights(
    state: dict, folder: Path, layout: str, names: tuple[str, str]
) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    state = {k: v.contiguous() for k, v in state.items()}
    if layout == "bin":
        torch.save(state, folder / names[0])
    else:
        save_file(state, folder / names[1], metadata={"format": "pt"})


def write_processor_files(folder: str | Path) -> Path:
    """Write OpenAI's published config files plus ``vocab.json`` and ``merges.txt``
    (everything but the weights) into ``folder``; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED:
        shutil.copyfile(FILES_DIR / name, folder / name)
    write_bpe_files(folder, *openai_vocab_and_merges())
    return folder


def _clip_snapshot(folder: Path, size: str, layout: str) -> None:
    write_processor_files(folder)
    if size == "tiny":
        config = json.loads((folder / "config.json").read_text())
        config["_name_or_path"] = f"{REPO_ID} (cmalign tiny stand-in)"
        config["projection_dim"] = 64
        for tower in ("text_config", "vision_config"):
            config[tower].update(TINY, projection_dim=64)
        (folder / "config.json").write_text(json.dumps(config, indent=2))
    model = CLIPModel(CLIPConfig.from_json_file(folder / "config.json"))
    _save_weights(
        model.state_dict(), folder, layout, ("pytorch_model.bin", "model.safetensors")
    )


def siglip_corpus() -> list[str]:
    """The text the stand-in's sentencepiece model is trained on: the photos'
    captions, OpenAI's 80 prompt templates and 400 toy-world captions."""
    from .toy.world import make_dataset

    with (REPO_ROOT / "data" / "photos" / "captions.csv").open(encoding="utf-8") as f:
        lines = [row["caption"] for row in csv.DictReader(f)]
    templates = (REPO_ROOT / "data" / "prompts" / "openai_imagenet_80.txt").read_text()
    return lines + templates.split("\n") + make_dataset(400, seed=0).captions


def train_siglip_spiece(out: str | Path = SIGLIP_DIR / "spiece.model") -> Path:
    """Train the stand-in's unigram sentencepiece model (SigLIP's kind and ids)."""
    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(line for line in siglip_corpus() if line.strip()),
        model_writer=buffer,
        model_type="unigram",
        vocab_size=1000,
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        num_threads=1,
        minloglevel=2,
    )
    Path(out).write_bytes(buffer.getvalue())
    return Path(out)


def _siglip_snapshot(folder: Path, size: str, layout: str) -> None:
    import sentencepiece
    from transformers import SiglipConfig, SiglipModel

    for name in (*PUBLISHED, "spiece.model"):
        shutil.copyfile(SIGLIP_DIR / name, folder / name)
    pieces = sentencepiece.SentencePieceProcessor(
        model_file=str(folder / "spiece.model")
    )
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["vocab_size"] = pieces.get_piece_size()
    if size == "tiny":
        config["_name_or_path"] = f"{SIGLIP_REPO_ID} (cmalign tiny stand-in)"
        for tower in ("text_config", "vision_config"):
            config[tower].update(TINY)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    with quiet_transformers():  # the published config's unused CLIP token ids
        config = SiglipConfig.from_json_file(folder / "config.json")
    model = SiglipModel(config)
    with (
        torch.no_grad()
    ):  # the paper's initial temperature and bias (t = log 10, b = -10)
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-10.0)
    _save_weights(
        model.state_dict(), folder, layout, ("pytorch_model.bin", "model.safetensors")
    )


def open_clip_config(size: str = "tiny", *, quick_gelu: bool = False) -> dict:
    """The published ``open_clip_config.json`` (shrunk for ``size="tiny"``)."""
    config = json.loads((OPEN_CLIP_DIR / "open_clip_config.json").read_text())
    model_cfg = config["model_cfg"]
    if size == "tiny":
        model_cfg["embed_dim"] = 64
        model_cfg["vision_cfg"].update(width=64, layers=2, head_width=32)
        model_cfg["text_cfg"].update(width=64, layers=2, heads=2)
    if quick_gelu:
        model_cfg["quick_gelu"] = True
    return config


def _open_clip_snapshot(folder: Path, size: str, layout: str, quick_gelu: bool) -> None:
    from .families.open_clip import clip_config, from_clip_state_dict

    config = open_clip_config(size, quick_gelu=quick_gelu)
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    clip = clip_config(config["model_cfg"])
    state = from_clip_state_dict(CLIPModel(clip).state_dict(), clip)
    names = ("open_clip_pytorch_model.bin", "open_clip_model.safetensors")
    _save_weights(state, folder, layout, names)


def write_snapshot(
    folder: str | Path,
    *,
    family: str = "clip",
    size: str = "base",
    layout: str = "safetensors",
    seed: int = 0,
    quick_gelu: bool = False,
) -> Path:
    """Write a stand-in checkpoint's files into ``folder``.

    Parameters
    ----------
    family : {"clip", "siglip", "open_clip"}
        Which checkpoint (:data:`REPO_IDS`).
    size : {"base", "tiny"}
        The published architecture, or towers shrunk to width 64 and 2 layers.
    layout : {"bin", "safetensors"}
        Weights as a ``torch.save``'d state dict or as safetensors.
    seed : int
        Seed of the random weights.
    quick_gelu : bool
        open_clip only: add ``"quick_gelu": true`` to ``model_cfg``.
    """
    if size not in SIZES or family not in REPO_IDS:
        raise ValueError(
            f"size must be one of {SIZES}, family one of {tuple(REPO_IDS)}"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if family == "clip":
        _clip_snapshot(folder, size, layout)
    elif family == "siglip":
        _siglip_snapshot(folder, size, layout)
    else:
        _open_clip_snapshot(folder, size, layout, quick_gelu)
    return folder


def snapshot_folder(cache: str | Path, repo_id: str = REPO_ID) -> Path:
    """Create ``refs/main`` for ``repo_id`` in a hub cache; return its snapshot
    folder (not created: the caller fills it), where transformers will look."""
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(STANDIN_REVISION)
    return repo / "snapshots" / STANDIN_REVISION


def build_hub_cache(
    cache: str | Path, *, family: str = "clip", repo_id: str | None = None, **kwargs
) -> Path:
    """Lay a stand-in out as a hub cache holding ``repo_id`` (default: the
    family's :data:`REPO_IDS` entry); ``kwargs`` as in :func:`write_snapshot`.

    Returns
    -------
    Path of the snapshot folder. Point ``HF_HUB_CACHE`` at ``cache``.
    """
    folder = snapshot_folder(cache, repo_id or REPO_IDS[family])
    return write_snapshot(folder, family=family, **kwargs)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="hub cache folder to create")
    parser.add_argument("--family", choices=tuple(REPO_IDS), default="clip")
    parser.add_argument("--size", choices=SIZES, default="base")
    parser.add_argument("--layout", choices=LAYOUTS, default="bin")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    snapshot = build_hub_cache(
        args.cache,
        family=args.family,
        size=args.size,
        layout=args.layout,
        seed=args.seed,
    )
    name = REPO_IDS[args.family]
    print(f"stand-in for {name} ({args.size}) written to {snapshot}")
    print(f"use it with: HF_HUB_OFFLINE=1 HF_HUB_CACHE={args.cache}")
    return snapshot


if __name__ == "__main__":
    main()

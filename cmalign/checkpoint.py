"""What a CLIP checkpoint folder holds, and how to write one both transformers lines read.

A Hugging Face checkpoint is a folder (or a hub-cache snapshot) with
``config.json``, weights (``model.safetensors``, or the older pickle-based
``pytorch_model.bin``), the image-processor settings and the tokenizer files.
transformers 5 writes ``processor_config.json`` and ``tokenizer.json``;
transformers 4 reads ``preprocessor_config.json`` and ``vocab.json`` +
``merges.txt``. :func:`save_clip` writes both, :func:`inspect_folder` says what
a folder has (so :func:`cmalign.models.load_clip` can name what is missing).
Taught in notebooks/01_clip_embeddings.ipynb.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import CLIPModel, CLIPProcessor

SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"))
IMAGE_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


@dataclass
class FolderContents:
    """Which of the files a CLIP checkpoint needs are in a folder."""

    folder: Path
    model_type: str | None
    safetensors: str | None
    pickle: str | None
    has_tokenizer: bool
    has_image_processor: bool

    def problems(self) -> list[str]:
        """What is missing or wrong, in words (empty when the folder is usable)."""
        out = []
        if self.model_type != "clip":
            out.append(
                f"config.json says model_type {self.model_type!r}, not 'clip' "
                "(this is not a CLIP checkpoint)"
            )
        if not (self.safetensors or self.pickle):
            out.append(f"no weights ({' or '.join(SAFETENSORS[:1] + PICKLES[:1])})")
        if not self.has_tokenizer:
            out.append(
                "no tokenizer files (tokenizer.json, or vocab.json + merges.txt)"
            )
        if not self.has_image_processor:
            out.append(f"no image processor ({' or '.join(IMAGE_PROCESSOR_FILES)})")
        return out


def inspect_folder(folder: str | Path) -> FolderContents:
    """Read ``config.json`` and list the checkpoint files present in ``folder``."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {folder / 'config.json'}: {err}") from None
    present = {p.name for p in folder.iterdir()}
    return FolderContents(
        folder=folder,
        model_type=config.get("model_type"),
        safetensors=next((f for f in SAFETENSORS if f in present), None),
        pickle=next((f for f in PICKLES if f in present), None),
        has_tokenizer=any(all(f in present for f in s) for s in TOKENIZER_SETS),
        has_image_processor=any(f in present for f in IMAGE_PROCESSOR_FILES),
    )


def write_bpe_files(
    folder: str | Path,
    vocab: dict[str, int],
    merges: Sequence[str] | Sequence[tuple[str, str]],
) -> tuple[Path, Path]:
    """Write a byte-level BPE tokenizer as ``vocab.json`` + ``merges.txt`` (UTF-8),
    the files ``CLIPTokenizer(vocab_file, merges_file)`` reads in transformers 4
    and 5. ``merges`` are "a b" strings or (a, b) pairs.

    Returns
    -------
    (vocab path, merges path)
    """
    folder = Path(folder)
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = [m if isinstance(m, str) else " ".join(m) for m in merges]
    merges_file.write_text(
        "#version: 0.2\n" + "".join(f"{m}\n" for m in lines), encoding="utf-8"
    )
    return vocab_file, merges_file


def write_legacy_files(folder: str | Path) -> None:
    """Add the transformers-4 files (``preprocessor_config.json``, ``vocab.json``,
    ``merges.txt``) to a folder saved by transformers 5, derived from its
    ``processor_config.json`` and ``tokenizer.json``. Existing files are kept."""
    folder = Path(folder)
    processor_config = folder / "processor_config.json"
    legacy_processor = folder / "preprocessor_config.json"
    if processor_config.exists() and not legacy_processor.exists():
        settings = json.loads(processor_config.read_text())["image_processor"]
        settings.setdefault("processor_class", "CLIPProcessor")
        legacy_processor.write_text(json.dumps(settings, indent=2) + "\n")
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.exists() and not (folder / "vocab.json").exists():
        tokenizer = json.loads(tokenizer_json.read_text())
        bpe = tokenizer["model"]
        vocab = dict(bpe["vocab"])
        for token in tokenizer.get("added_tokens", []):
            vocab.setdefault(token["content"], token["id"])
        write_bpe_files(folder, vocab, bpe["merges"])


def save_clip(model: CLIPModel, processor: CLIPProcessor, folder: str | Path) -> Path:
    """Save a CLIP so that ``CLIPModel.from_pretrained`` and ``load_clip`` read it
    with transformers 4.57+ and 5.x: safetensors weights, config, processor and
    tokenizer in both lines' file layouts.

    Returns
    -------
    Path of the folder.
    """
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    write_legacy_files(folder)
    return folder

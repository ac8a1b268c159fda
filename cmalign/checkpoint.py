"""What a checkpoint folder holds, how its weights are read, and how to write one both transformers lines read.

A Hugging Face checkpoint is a folder (or a hub-cache snapshot) with
``config.json``, weights (``model.safetensors``, or the older pickle-based
``pytorch_model.bin``), the image-processor settings and the tokenizer files
(CLIP's BPE ``vocab.json`` + ``merges.txt`` or ``tokenizer.json``, SigLIP's
sentencepiece ``spiece.model``). transformers 5 writes ``processor_config.json``
and ``tokenizer.json``; transformers 4 reads ``preprocessor_config.json`` and
``vocab.json`` + ``merges.txt``. :func:`inspect_folder` says what a folder has
(so :func:`cmalign.models.load_clip` can name what is missing),
:func:`from_pretrained` reads one (safetensors, or the ``.bin`` through
``torch.load(weights_only=True)``; remote code never runs), :func:`save_clip`
writes both layouts. OpenAI's BPE vocabulary, which open_clip checkpoints use
without shipping it, is built here from ``data/openai_clip``.
Taught in notebooks/01_clip_embeddings.ipynb.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from transformers.convert_slow_tokenizer import bytes_to_unicode

from .utils import REPO_ROOT, quiet_transformers

SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"), ("spiece.model",))
IMAGE_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
OPENAI_FILES = REPO_ROOT / "data" / "openai_clip"
OPENAI_BPE = OPENAI_FILES / "bpe_simple_vocab_16e6.txt.gz"


class RefusedWeightsError(OSError):
    """The checkpoint holds its weights only in a format the caller refused."""


@dataclass
class FolderContents:
    """Which of the files a checkpoint needs are in a folder."""

    folder: Path
    model_type: str | None
    safetensors: str | None
    pickle: str | None
    has_tokenizer: bool
    has_image_processor: bool

    def problems(self, model_types: Sequence[str] = ("clip", "siglip")) -> list[str]:
        """What is missing or wrong, in words (empty when the folder is usable)."""
        out = []
        if self.model_type not in model_types:
            wanted = " or ".join(repr(t) for t in model_types)
            out.append(
                f"config.json says model_type {self.model_type!r}, not {wanted} "
                "(not a checkpoint cmalign loads)"
            )
        if not (self.safetensors or self.pickle):
            out.append(f"no weights ({' or '.join(SAFETENSORS[:1] + PICKLES[:1])})")
        if not self.has_tokenizer:
            out.append(
                "no tokenizer files (tokenizer.json, vocab.json + merges.txt, or "
                "spiece.model)"
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


def choose_weights(
    contents: FolderContents, what: str, *, safetensors_only: bool
) -> str:
    """The weights file to read from a checked folder, or an error naming the problem."""
    problems = contents.problems()
    if problems:
        raise OSError(
            f"{what} ({contents.folder}) cannot be loaded: " + "; ".join(problems)
        )
    if contents.safetensors:
        return contents.safetensors
    if safetensors_only:
        raise RefusedWeightsError(
            f"{what} is available ({contents.folder}) but only as "
            f"{contents.pickle}, a pickle-based file, and safetensors_only=True "
            "refuses it. Load with safetensors_only=False (read with "
            "torch.load(weights_only=True): tensors only, no code) or convert it "
            "to model.safetensors."
        )
    return contents.pickle


def from_pretrained(
    model_class,
    processor_class,
    source: str,
    *,
    local_only: bool,
    weights_file: str | None,
    cache_dir: str | None = None,
):
    """Model and processor of a transformers checkpoint (folder or hub id).

    ``weights_file`` None means "decide from the hub": safetensors first, then
    ``pytorch_model.bin`` through ``torch.load(weights_only=True)``.

    Returns
    -------
    (model, processor, weights_file)
    """
    kwargs = {"local_files_only": local_only, "cache_dir": cache_dir}
    with quiet_transformers():  # config notices (SigLIP's unused CLIP token ids) hidden
        config = model_class.config_class.from_pretrained(source, **kwargs)
    kwargs["config"] = config
    with quiet_transformers(notices=True):  # no progress bar; weight warnings stay
        if weights_file is None:
            try:
                model = model_class.from_pretrained(
                    source, use_safetensors=True, **kwargs
                )
                weights_file = "model.safetensors"
            except OSError:
                model = model_class.from_pretrained(
                    source, use_safetensors=False, weights_only=True, **kwargs
                )
                weights_file = "pytorch_model.bin"
        else:
            safe = weights_file.startswith("model.safetensors")
            extra = {} if safe else {"weights_only": True}
            model = model_class.from_pretrained(
                source, use_safetensors=safe, **extra, **kwargs
            )
    with quiet_transformers():  # processor notices (torchvision fallback) hidden
        processor = processor_class.from_pretrained(
            source, local_files_only=local_only, cache_dir=cache_dir
        )
    return model, processor, weights_file


@lru_cache(maxsize=2)
def openai_vocab_and_merges(
    bpe_path: str | Path = OPENAI_BPE,
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


def write_openai_tokenizer(folder: str | Path) -> Path:
    """OpenAI's BPE tokenizer files (``vocab.json``, ``merges.txt`` and the
    published ``tokenizer_config.json`` / ``special_tokens_map.json``) in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_bytes((OPENAI_FILES / name).read_bytes())
    write_bpe_files(folder, *openai_vocab_and_merges())
    return folder


def write_legacy_files(folder: str | Path) -> None:
    """Add the transformers-4 files (``preprocessor_config.json`` and, for BPE
    tokenizers, ``vocab.json`` + ``merges.txt``) to a folder saved by
    transformers 5, derived from its ``processor_config.json`` and
    ``tokenizer.json``. Existing files are kept."""
    folder = Path(folder)
    processor_config = folder / "processor_config.json"
    legacy_processor = folder / "preprocessor_config.json"
    if processor_config.exists() and not legacy_processor.exists():
        saved = json.loads(processor_config.read_text())
        settings = saved["image_processor"]
        settings.setdefault(
            "processor_class", saved.get("processor_class", "CLIPProcessor")
        )
        legacy_processor.write_text(json.dumps(settings, indent=2) + "\n")
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.exists() and not (folder / "vocab.json").exists():
        tokenizer = json.loads(tokenizer_json.read_text())
        bpe = tokenizer["model"]
        if bpe.get("type") != "BPE":  # sentencepiece tokenizers keep spiece.model
            return
        vocab = dict(bpe["vocab"])
        for token in tokenizer.get("added_tokens", []):
            vocab.setdefault(token["content"], token["id"])
        write_bpe_files(folder, vocab, bpe["merges"])


def save_clip(model, processor, folder: str | Path) -> Path:
    """Save a model and its processor so that ``from_pretrained`` and ``load_clip``
    read them with transformers 4.57+ and 5.x: safetensors weights, config,
    processor and tokenizer in both lines' file layouts.

    Works for every family: a ``CLIPModel`` (an open_clip checkpoint converted
    on loading becomes an ordinary CLIP folder) or a ``SiglipModel``.

    Returns
    -------
    Path of the folder.
    """
    folder = Path(folder)
    with quiet_transformers(notices=True):  # no progress bar; warnings stay
        model.save_pretrained(folder)
    with quiet_transformers():
        processor.save_pretrained(folder)
    write_legacy_files(folder)
    return folder

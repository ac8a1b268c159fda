"""Model families: which kind of checkpoint a folder holds, and the one place that knows each.

A *family* is a module here that knows one kind of checkpoint end to end:

- :mod:`.clip` — transformers ``CLIPModel`` folders (OpenAI's hub repos, LAION's
  HF conversions, the toy model): scaled cosine, softmax over the candidates.
- :mod:`.siglip` — transformers ``SiglipModel`` (SigLIP, SigLIP 2 fixed
  resolution): scaled cosine plus ``logit_bias``, an independent sigmoid per
  pair; texts padded to 64 tokens.
- :mod:`.open_clip` — open_clip-only checkpoints (``open_clip_config.json`` +
  weights), whose standard ViT towers are mapped into a ``CLIPModel``.

Each family module has the same functions: ``load(source, ...)`` returns a
:class:`Loaded` (model, processor, :class:`~cmalign.inputs.ModelInputs`,
weights file), ``logits(model, image_emb, text_emb)`` and
``probabilities(logits)``. :func:`detect` reads a folder's config and names its
family; :func:`get` returns the module. Everything downstream
(:class:`~cmalign.models.ClipBundle`, embedding, the cache, evaluation) asks the
bundle, never the family. Taught in notebooks/01_clip_embeddings.ipynb
(softmax beside sigmoid) and notebooks/05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..inputs import ModelInputs

FAMILIES = ("clip", "siglip", "open_clip")
#: config.json ``model_type`` -> family
MODEL_TYPES = {"clip": "clip", "siglip": "siglip"}
OPEN_CLIP_CONFIG = "open_clip_config.json"
SUPPORTED = (
    "CLIP (config.json model_type 'clip'), SigLIP / SigLIP 2 fixed-resolution "
    "('siglip') and open_clip ViT checkpoints (open_clip_config.json, or "
    "'hf-hub:ORG/REPO')"
)


class UnknownFamilyError(OSError):
    """A checkpoint of a kind cmalign does not load; ``.found`` says what it is."""

    def __init__(self, where: str, found: str):
        super().__init__(f"{where}: {found}; cmalign loads {SUPPORTED}")
        self.found = found


@dataclass
class Loaded:
    """What a family's ``load`` returns."""

    model: object
    processor: object
    inputs: ModelInputs
    weights_file: str


def get(family: str) -> ModuleType:
    """The module of ``family`` (``"clip"``, ``"siglip"`` or ``"open_clip"``)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")
    return importlib.import_module(f"{__name__}.{family}")


def model_type(folder: Path) -> str | None:
    """``model_type`` of ``folder/config.json`` (None without one)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("model_type")
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {path}: {err}") from None


def family_of_model_type(kind: str | None, where: str) -> str:
    """The family of a config's ``model_type``, or an error naming what is supported."""
    if kind in MODEL_TYPES:
        return MODEL_TYPES[kind]
    if kind == "siglip2":
        found = "model_type 'siglip2' (SigLIP 2 NaFlex, variable resolution)"
    else:
        found = f"config.json says model_type {kind!r}, not 'clip' or 'siglip'"
    raise UnknownFamilyError(where, found)


def detect(folder: str | Path) -> str:
    """The family of a checkpoint folder or hub-cache snapshot.

    ``config.json`` decides when present (its ``model_type``); a folder with only
    ``open_clip_config.json`` is an open_clip checkpoint.
    """
    folder = Path(folder)
    kind = model_type(folder)
    if kind is None:
        if (folder / OPEN_CLIP_CONFIG).is_file():
            return "open_clip"
        raise FileNotFoundError(
            f"model folder '{folder}' has no config.json (was it written by "
            f"save_pretrained?) and no {OPEN_CLIP_CONFIG}"
        )
    return family_of_model_type(kind, f"model folder '{folder}'")

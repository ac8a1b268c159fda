"""Load a model of any supported family, from the hub, a local folder or the toy world.

One code path for every source: ``load_clip("openai/clip-vit-base-patch32")``
or ``load_clip("google/siglip-base-patch16-224")`` for a hub repo (its local
cache first, the hub when it can be reached), ``load_clip("hf-hub:ORG/REPO")``
for an open_clip checkpoint, ``load_clip("toy")`` for the small CLIP this
project trains on its procedural world (``data/toy_clip``), or any folder
written by ``save_pretrained`` / holding ``open_clip_config.json``.

The :class:`ClipBundle` it returns is the contract every family fulfils and
everything downstream uses: images and texts become unit rows
(:mod:`cmalign.embed`), :meth:`ClipBundle.logits` / :meth:`ClipBundle.probabilities`
score them the family's way (CLIP: scaled cosine and a softmax; SigLIP: plus
``logit_bias``, a sigmoid per pair), ``inputs`` holds the preprocessing and
tokenisation in use, ``identity()`` what a cache key must include. Which
family a checkpoint is, and how it is read, lives in :mod:`cmalign.families`.

Weights: ``model.safetensors`` is preferred; a checkpoint holding only
``pytorch_model.bin`` is read through ``torch.load(weights_only=True)``, which
restores tensors only; ``safetensors_only=True`` refuses it. Remote code is
never run. Taught in notebooks/01_clip_embeddings.ipynb.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.utils import get_session

from . import families
from .checkpoint import RefusedWeightsError, choose_weights, inspect_folder
from .inputs import ModelInputs
from .utils import REPO_ROOT, default_device

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
TOY_ALIAS = "toy"
HF_HUB_PREFIX = "hf-hub:"

__all__ = ["ClipBundle", "HubUnavailableError", "RefusedWeightsError", "load_clip"]


class HubUnavailableError(OSError):
    """The model is not cached locally and the Hugging Face Hub cannot be reached."""


def toy_model_dir() -> Path:
    """Folder of the project's own small CLIP (``$CMALIGN_TOY_MODEL`` overrides)."""
    return Path(os.environ.get("CMALIGN_TOY_MODEL", REPO_ROOT / "data" / "toy_clip"))


@dataclass
class ClipBundle:
    """A loaded model with everything that prepares and scores its inputs.

    Attributes
    ----------
    model : transformers.CLIPModel or transformers.SiglipModel
        In eval mode, on ``device``.
    processor : transformers processor
        Image processor plus tokenizer (saved by :func:`cmalign.save_clip`).
    name : str
        What was asked for (hub id, ``hf-hub:`` id, folder or ``"toy"``).
    device : torch.device
    weights_file : str
        The weights file that was read.
    family : {"clip", "siglip", "open_clip"}
        Which :mod:`cmalign.families` module loaded and scores it.
    inputs : ModelInputs
        Image pipeline and text settings in use (built from ``processor`` when
        not given).
    """

    model: object
    processor: object
    name: str
    device: torch.device
    weights_file: str = "model.safetensors"
    family: str = "clip"
    inputs: ModelInputs | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.inputs is None:
            self.inputs = families.get(self.family).inputs_for(
                self.model, self.processor
            )

    @property
    def context_length(self) -> int:
        """Text tokens the model reads (77 for OpenAI CLIP, 64 for SigLIP)."""
        return self.inputs.texts.context_length

    @property
    def image_size(self) -> int:
        """Side of the square image the vision tower expects (224 for ViT-B/32)."""
        return int(self.model.config.vision_config.image_size)

    @property
    def embed_dim(self) -> int:
        """Dimension of the shared embedding space (512 for ViT-B/32)."""
        config = self.model.config
        if hasattr(config, "projection_dim"):
            return int(config.projection_dim)
        return int(config.text_config.projection_size)  # SigLIP: the text head's width

    def logits(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """The family's scores of every image against every text.

        Parameters
        ----------
        image_emb : torch.Tensor of shape (n_images, embed_dim), unit rows
        text_emb : torch.Tensor of shape (n_texts, embed_dim), unit rows

        Returns
        -------
        torch.Tensor of shape (n_images, n_texts): ``s * cos`` (CLIP, s <= 100)
        or ``s * cos + b`` (SigLIP), as the model's own forward computes them.
        """
        return families.get(self.family).logits(self.model, image_emb, text_emb)

    def probabilities(
        self, image_emb: torch.Tensor, text_emb: torch.Tensor
    ) -> torch.Tensor:
        """(n_images, n_texts) probabilities: a softmax over the texts of each image
        (CLIP, rows sum to 1) or an independent sigmoid per pair (SigLIP)."""
        return families.get(self.family).probabilities(self.logits(image_emb, text_emb))

    def identity(self) -> dict:
        """What changes this model's embeddings: family, name, preprocessing and
        tokenisation (the weights are fingerprinted by :func:`cmalign.cache.model_key`)."""
        return {"family": self.family, "name": self.name, **self.inputs.describe()}


def _hub_reachable(timeout: float = 5.0) -> bool:
    """Whether the hub answers, through huggingface_hub's own HTTP client (which
    honours ``HTTPS_PROXY`` and ``HF_ENDPOINT``), within ``timeout`` seconds."""
    if constants.HF_HUB_OFFLINE:
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure to get an answer means "offline"
        return False
    return True


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _resolve_local(name: str) -> Path | None:
    """Return a local folder for ``name``, or None when it should be a hub id."""
    if name == TOY_ALIAS:
        folder = toy_model_dir()
        if not (folder / "config.json").exists():
            raise FileNotFoundError(
                f"the toy model is missing from {folder}; rebuild it with "
                "`python -m cmalign.toy.train` (see README)"
            )
        return folder
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"model path '{name}' is a file, not a folder")
        families.detect(path)  # a folder without config.json / open_clip_config.json
        return path
    if _looks_like_path(name):
        raise FileNotFoundError(f"model folder '{name}' does not exist")
    return None


def _cached_snapshot(repo_id: str, cache: str | None, config: str = "config.json"):
    """The hub-cache snapshot folder of ``repo_id`` (main), if ``config`` is cached."""
    found = try_to_load_from_cache(repo_id, config, cache_dir=cache)
    return Path(found).parent if isinstance(found, str) else None


def _offline_error(name: str, cache_dir: str | None) -> HubUnavailableError:
    return HubUnavailableError(
        f"cannot load '{name}': it is not in the local Hugging Face cache "
        f"({cache_dir or constants.HF_HUB_CACHE}) and the hub cannot be reached (offline, or a "
        "proxy is needed: set HTTPS_PROXY). Offline, use load_clip('toy') (the "
        "project's own small CLIP) or a local folder written by save_pretrained."
    )


def _load_folder(folder: Path, what: str, family: str, settings: dict, only: bool):
    """Check a local folder or snapshot of ``family`` and load it."""
    module = families.get(family)
    if family == "open_clip":
        return module.load(folder, safetensors_only=only, **settings)
    weights = choose_weights(inspect_folder(folder), what, safetensors_only=only)
    return module.load(str(folder), local_only=True, weights_file=weights, **settings)


def load_clip(
    name_or_path: str | None = None,
    *,
    device: str | torch.device | None = None,
    safetensors_only: bool = False,
    cache_dir: str | os.PathLike | None = None,
    cleaning: str | None = None,
    preprocessing: str = "reference",
) -> ClipBundle:
    """Load a model and its processor, ready for embedding.

    Parameters
    ----------
    name_or_path : str, optional
        A hub id (default ``"openai/clip-vit-base-patch32"``; ``None`` or ``""``
        mean the default; ``"google/siglip-base-patch16-224"`` …), an open_clip
        hub repo as ``"hf-hub:ORG/REPO"``, a local folder (``save_pretrained``
        layout, or ``open_clip_config.json`` + weights), or ``"toy"``.
    device : str or torch.device, optional
        Defaults to ``$CMALIGN_DEVICE``, else CUDA, Apple MPS or CPU.
    safetensors_only : bool
        Refuse checkpoints whose weights exist only as a pickle-based ``.bin``.
    cache_dir : str or PathLike, optional
        Hugging Face hub cache to read and fill (default: ``HF_HUB_CACHE``).
    cleaning : {"openai", "lower", "none"}, optional
        Text cleaning before tokenising (:func:`cmalign.inputs.clean_text`).
        Default: the family's (OpenAI's for CLIP and open_clip, the tokenizer's
        own for SigLIP); ``"none"`` is transformers' raw behaviour.
    preprocessing : {"reference", "transformers"}
        ``"reference"`` follows the checkpoint's own image pipeline (OpenAI's
        rounding centre crop); ``"transformers"`` runs the image processor.

    Returns
    -------
    ClipBundle
        Model in eval mode on ``device``, with its processor, family and inputs.

    Raises
    ------
    HubUnavailableError
        A hub id that is not in the local cache while the hub cannot be reached.
    RefusedWeightsError
        The weights exist only as a ``.bin`` and ``safetensors_only``.
    FileNotFoundError, NotADirectoryError, OSError
        A local path that is missing or not a model folder; a checkpoint without
        weights, tokenizer or image processor, of an unsupported family or
        tower (the message names the folder, what is missing and what is supported).
    ImportError
        SigLIP without ``sentencepiece`` / ``protobuf`` (the message says what to install).
    """
    name = name_or_path or DEFAULT_MODEL
    cache = str(cache_dir) if cache_dir is not None else None
    device = torch.device(device or default_device())
    settings = {"cleaning": cleaning, "preprocessing": preprocessing}
    if name.startswith(HF_HUB_PREFIX):  # open_clip's own naming of a hub repo
        repo = name[len(HF_HUB_PREFIX) :]
        snapshot = _cached_snapshot(repo, cache, families.OPEN_CLIP_CONFIG)
        if snapshot is None and not _hub_reachable():
            raise _offline_error(name, cache)
        snapshot = snapshot or families.get("open_clip").download(
            repo, cache_dir=cache, safetensors_only=safetensors_only
        )
        family, what = "open_clip", f"'{name}' in the Hugging Face cache ({snapshot})"
        loaded = _load_folder(snapshot, what, family, settings, safetensors_only)
    elif (local := _resolve_local(name)) is not None:
        family, what = families.detect(local), f"model folder '{name}'"
        loaded = _load_folder(local, what, family, settings, safetensors_only)
    elif (snapshot := _cached_snapshot(name, cache)) is not None:
        what = f"'{name}' in the local Hugging Face cache ({snapshot})"
        family = families.family_of_model_type(families.model_type(snapshot), what)
        # the snapshot folder, not the hub id: transformers 4.57's AutoProcessor drops
        # local_files_only and, offline, retried a blocked hub for minutes
        loaded = _load_folder(snapshot, what, family, settings, safetensors_only)
    elif (
        snapshot := _cached_snapshot(name, cache, families.OPEN_CLIP_CONFIG)
    ) is not None:  # an open_clip-only repo named without "hf-hub:"
        family, what = "open_clip", f"'{name}' in the local Hugging Face cache"
        loaded = _load_folder(snapshot, what, family, settings, safetensors_only)
    elif not _hub_reachable():
        raise _offline_error(name, cache)
    else:
        config = Path(hf_hub_download(name, "config.json", cache_dir=cache))
        family = families.family_of_model_type(families.model_type(config.parent), name)
        loaded = families.get(family).load(
            name,
            local_only=False,
            weights_file="model.safetensors" if safetensors_only else None,
            cache_dir=cache,
            **settings,
        )
    model = loaded.model.to(device).eval()
    return ClipBundle(
        model,
        loaded.processor,
        name,
        device,
        weights_file=loaded.weights_file,
        family=family,
        inputs=loaded.inputs,
    )

"""Load a CLIP model and its processor, from the hub, a local folder or the toy world.

One code path for both worlds: ``load_clip("openai/clip-vit-base-patch32")``
for the real pretrained model (the hub, or its local cache when offline),
``load_clip("toy")`` for the small CLIP this project trains on its procedural
world (ships in ``data/toy_clip``), or any folder written by
``save_pretrained``.

Weights: ``model.safetensors`` is preferred. A checkpoint that holds only
``pytorch_model.bin`` (OpenAI's repo on the hub is mirrored that way) is read
through transformers' ``torch.load(weights_only=True)`` path, which restores
tensors only and refuses arbitrary pickled objects; ``safetensors_only=True``
refuses it altogether. Remote code is never run. ``ClipBundle.weights_file``
says which file was read. Taught in notebooks/01_clip_embeddings.ipynb.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.utils import get_session
from transformers import CLIPModel, CLIPProcessor

from .checkpoint import FolderContents, inspect_folder
from .utils import REPO_ROOT, default_device, quiet_transformers

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
TOY_ALIAS = "toy"


class HubUnavailableError(OSError):
    """The model is not cached locally and the Hugging Face Hub cannot be reached."""


class RefusedWeightsError(OSError):
    """The checkpoint holds its weights only in a format the caller refused."""


def toy_model_dir() -> Path:
    """Folder of the project's own small CLIP (``$CMALIGN_TOY_MODEL`` overrides)."""
    return Path(os.environ.get("CMALIGN_TOY_MODEL", REPO_ROOT / "data" / "toy_clip"))


@dataclass
class ClipBundle:
    """A CLIP model with the processor that prepares its inputs.

    Attributes
    ----------
    model : transformers.CLIPModel
        In eval mode, on ``device``.
    processor : transformers.CLIPProcessor
        Image processor plus tokenizer.
    name : str
        What was asked for (hub id, folder or ``"toy"``).
    device : torch.device
    weights_file : str
        The weights file that was read (``model.safetensors`` or
        ``pytorch_model.bin``).
    """

    model: CLIPModel
    processor: CLIPProcessor
    name: str
    device: torch.device
    weights_file: str = "model.safetensors"

    @property
    def context_length(self) -> int:
        """Maximum number of text tokens (77 for OpenAI CLIP)."""
        return int(self.model.config.text_config.max_position_embeddings)

    @property
    def image_size(self) -> int:
        """Side of the square image the vision tower expects (224 for ViT-B/32)."""
        return int(self.model.config.vision_config.image_size)

    @property
    def embed_dim(self) -> int:
        """Dimension of the shared embedding space (512 for ViT-B/32)."""
        return int(self.model.config.projection_dim)


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
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"model folder '{name}' has no config.json (was it written by "
                "save_pretrained?)"
            )
        return path
    if _looks_like_path(name):
        raise FileNotFoundError(f"model folder '{name}' does not exist")
    return None


def _cached_snapshot(repo_id: str, cache_dir: str | None) -> Path | None:
    """The hub-cache snapshot folder of ``repo_id`` (main), if its config is cached."""
    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir)
    return Path(found).parent if isinstance(found, str) else None


def _check(contents: FolderContents, what: str, safetensors_only: bool) -> str:
    """The weights file to read from a checked folder, or a clear error."""
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


def _from_pretrained(
    source: str,
    local_only: bool,
    weights_file: str | None,
    cache_dir: str | None = None,
) -> tuple[CLIPModel, CLIPProcessor, str]:
    """Load model and processor; ``weights_file`` None means "decide from the hub"."""
    kwargs = {"local_files_only": local_only, "cache_dir": cache_dir}
    with quiet_transformers(notices=True):  # no progress bar; weight warnings stay
        model, weights_file = _load_model(source, kwargs, weights_file)
    with quiet_transformers():  # processor notices (torchvision fallback) hidden
        processor = CLIPProcessor.from_pretrained(source, **kwargs)
    return model, processor, weights_file


def _load_model(
    source: str, kwargs: dict, weights_file: str | None
) -> tuple[CLIPModel, str]:
    if weights_file is None:  # downloading: safetensors first, then the .bin
        try:
            model = CLIPModel.from_pretrained(source, use_safetensors=True, **kwargs)
            weights_file = "model.safetensors"
        except OSError:
            model = CLIPModel.from_pretrained(
                source, use_safetensors=False, weights_only=True, **kwargs
            )
            weights_file = "pytorch_model.bin"
    else:
        safe = weights_file.startswith("model.safetensors")
        extra = {} if safe else {"weights_only": True}
        model = CLIPModel.from_pretrained(
            source, use_safetensors=safe, **extra, **kwargs
        )
    return model, weights_file


def load_clip(
    name_or_path: str | None = None,
    device: str | torch.device | None = None,
    safetensors_only: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> ClipBundle:
    """Load a CLIP model and processor, ready for embedding.

    Parameters
    ----------
    name_or_path : str, optional
        A hub id (default ``"openai/clip-vit-base-patch32"``; ``None`` or ``""``
        mean the default), a folder written by ``save_pretrained``, or
        ``"toy"`` for this project's own small CLIP.
    device : str or torch.device, optional
        Defaults to ``$CMALIGN_DEVICE``, else CUDA, Apple MPS or CPU.
    safetensors_only : bool
        Refuse checkpoints whose weights exist only as ``pytorch_model.bin``.
    cache_dir : str or PathLike, optional
        Hugging Face hub cache to read and fill (default: ``HF_HUB_CACHE``).

    Returns
    -------
    ClipBundle
        Model in eval mode on ``device`` with its processor; ``weights_file``
        names the file that was read.

    Raises
    ------
    HubUnavailableError
        A hub id that is not in the local cache while the hub cannot be reached
        (raised within seconds, without transformers' retries).
    RefusedWeightsError
        The weights exist only as ``pytorch_model.bin`` and ``safetensors_only``.
    FileNotFoundError, NotADirectoryError, OSError
        A local path that is missing or not a model folder; a folder or cached
        snapshot without weights, tokenizer or image processor, or whose config
        is not a CLIP's (the message names the folder and what is missing).
    """
    name = name_or_path or DEFAULT_MODEL
    cache_dir = str(cache_dir) if cache_dir is not None else None
    device = torch.device(device or default_device())
    local = _resolve_local(name)
    if local is not None:
        weights = _check(
            inspect_folder(local), f"model folder '{name}'", safetensors_only
        )
        model, processor, weights = _from_pretrained(str(local), True, weights)
    elif (snapshot := _cached_snapshot(name, cache_dir)) is not None:
        what = f"'{name}' in the local Hugging Face cache"
        weights = _check(inspect_folder(snapshot), what, safetensors_only)
        model, processor, weights = _from_pretrained(name, True, weights, cache_dir)
    elif not _hub_reachable():
        raise HubUnavailableError(
            f"cannot load '{name}': it is not in the local Hugging Face cache "
            f"({cache_dir or constants.HF_HUB_CACHE}) and the hub cannot be reached (offline, or a "
            "proxy is needed: set HTTPS_PROXY). Offline, use load_clip('toy') (the "
            "project's own small CLIP) or a local folder written by save_pretrained."
        )
    else:
        only = "model.safetensors" if safetensors_only else None
        model, processor, weights = _from_pretrained(name, False, only, cache_dir)
    model = model.to(device).eval()
    return ClipBundle(model, processor, name, device, weights_file=weights)

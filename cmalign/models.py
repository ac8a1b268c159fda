"""Load a CLIP model and its processor, from the hub, a local folder or the toy world.

One code path for both worlds: ``load_clip("openai/clip-vit-base-patch32")``
for the real pretrained model (needs the hub or its local cache),
``load_clip("toy")`` for the small CLIP this project trains on its procedural
world (ships in ``data/toy_clip``), or any folder written by
``save_pretrained``. Taught in notebooks/01_clip_embeddings.ipynb.
"""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from transformers import CLIPModel, CLIPProcessor

from .utils import REPO_ROOT, default_device

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
TOY_ALIAS = "toy"


class HubUnavailableError(OSError):
    """The model is not cached locally and the Hugging Face Hub cannot be reached."""


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
    """

    model: CLIPModel
    processor: CLIPProcessor
    name: str
    device: torch.device

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
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _from_pretrained(source: str, local_only: bool) -> tuple[CLIPModel, CLIPProcessor]:
    kwargs = {"local_files_only": local_only}
    model = CLIPModel.from_pretrained(source, use_safetensors=True, **kwargs)
    with warnings.catch_warnings():
        # Without torchvision transformers falls back to its PIL image processor
        # (identical preprocessing) and says so; the fallback is expected here.
        warnings.filterwarnings("ignore", message=".*torchvision.*")
        processor = CLIPProcessor.from_pretrained(source, **kwargs)
    return model, processor


def _resolve_local(name: str) -> str | None:
    """Return a local folder for ``name``, or None when it should be a hub id."""
    if name == TOY_ALIAS:
        folder = toy_model_dir()
        if not (folder / "config.json").exists():
            raise FileNotFoundError(
                f"the toy model is missing from {folder}; rebuild it with "
                "`python -m cmalign.train_toy` (see README)"
            )
        return str(folder)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"model path '{name}' is a file, not a folder")
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"model folder '{name}' has no config.json (was it written by "
                "save_pretrained?)"
            )
        return str(path)
    if _looks_like_path(name):
        raise FileNotFoundError(f"model folder '{name}' does not exist")
    return None


def load_clip(
    name_or_path: str | None = None, device: str | torch.device | None = None
) -> ClipBundle:
    """Load a CLIP model and processor, ready for embedding.

    Parameters
    ----------
    name_or_path : str, optional
        A hub id (default ``"openai/clip-vit-base-patch32"``), a folder written
        by ``save_pretrained``, or ``"toy"`` for this project's own small CLIP.
    device : str or torch.device, optional
        Defaults to CUDA when available, else CPU.

    Returns
    -------
    ClipBundle
        Model in eval mode on ``device`` with its processor.

    Raises
    ------
    HubUnavailableError
        A hub id that is not in the local cache while the hub cannot be reached
        (raised within seconds, without transformers' retries).
    FileNotFoundError, NotADirectoryError
        A local path that is missing or not a model folder.
    """
    name = name_or_path or DEFAULT_MODEL
    device = torch.device(device or default_device())
    local = _resolve_local(name)
    if local is not None:
        model, processor = _from_pretrained(local, local_only=True)
    else:
        try:
            model, processor = _from_pretrained(name, local_only=True)
        except OSError:
            if not _hub_reachable():
                raise HubUnavailableError(
                    f"cannot load '{name}': it is not in the local Hugging Face cache "
                    "and the hub cannot be reached (offline). Offline, use "
                    "load_clip('toy') (the project's own small CLIP) or a local "
                    "folder written by save_pretrained."
                ) from None
            model, processor = _from_pretrained(name, local_only=False)
    model = model.to(device).eval()
    return ClipBundle(model=model, processor=processor, name=name, device=device)

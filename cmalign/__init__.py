"""cmalign: cross-modal alignment with CLIP, as a library and a series of lessons.

The library's main functions are importable from the top level::

    import cmalign
    bundle = cmalign.load_clip("toy")          # or "openai/clip-vit-base-patch32"
    image_emb = cmalign.embed_images(bundle, images)
    text_emb = cmalign.embed_texts(bundle, captions)
    cmalign.retrieval_metrics(image_emb, text_emb, text_to_image=...)
    loss = cmalign.clip_loss(image_emb, text_emb, logit_scale)

The house (README, "Layout"): the library is the flat modules here (models,
checkpoint, features, embed, cache, images, losses, optim, train, metrics,
retrieval, geometry, adapt, plots, interactive, data, standin, utils); the tools
are packages (``evaluate``: the benchmark command, its formats and report);
the embedded world is ``toy``; the course material (exercise checkers,
reference answers, the naive retrieval) is ``course``, which this package
does not import. ``cmalign`` on the command line is :mod:`cmalign.cli`.
"""

from .checkpoint import save_clip
from .embed import class_embeddings, embed_images, embed_texts
from .losses import clip_loss, siglip_loss
from .metrics import retrieval_metrics, zero_shot_accuracy
from .models import DEFAULT_MODEL, ClipBundle, HubUnavailableError, load_clip
from .retrieval import EmbeddingIndex, search
from .train import fit
from .utils import set_seed

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "ClipBundle",
    "EmbeddingIndex",
    "HubUnavailableError",
    "class_embeddings",
    "clip_loss",
    "embed_images",
    "embed_texts",
    "fit",
    "load_clip",
    "retrieval_metrics",
    "save_clip",
    "search",
    "set_seed",
    "siglip_loss",
    "zero_shot_accuracy",
]


def __getattr__(name: str):
    # ``cmalign.geometry``, ``cmalign.toy`` … after a bare ``import cmalign``: a
    # submodule is imported on first use, so start-up stays small
    import importlib

    if name.startswith("_") or name == "course":
        raise AttributeError(f"module 'cmalign' has no attribute {name!r}")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module 'cmalign' has no attribute {name!r}") from None

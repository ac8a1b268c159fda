"""cmalign: cross-modal alignment with CLIP, as a library and a series of lessons.

The most used names are importable from the top level::

    import cmalign
    bundle = cmalign.load_clip("toy")          # or "openai/clip-vit-base-patch32"
    image_emb = cmalign.embed_images(bundle, images)
    text_emb = cmalign.embed_texts(bundle, captions)

Modules: models, embed, images, losses, retrieval, metrics, geometry, plots,
data, toyworld, train, cache, exercises, bench (each says which notebook
teaches it).
"""

from . import data, exercises, geometry, losses, metrics, plots, retrieval, toymodel
from .embed import class_embeddings, embed_images, embed_texts
from .models import DEFAULT_MODEL, ClipBundle, HubUnavailableError, load_clip
from .utils import set_seed

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "ClipBundle",
    "HubUnavailableError",
    "class_embeddings",
    "data",
    "exercises",
    "plots",
    "embed_images",
    "embed_texts",
    "geometry",
    "load_clip",
    "losses",
    "metrics",
    "retrieval",
    "set_seed",
    "toymodel",
]

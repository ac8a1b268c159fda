"""cmalign: cross-modal alignment with CLIP, as a library and a series of lessons.

The most used names are importable from the top level::

    import cmalign
    bundle = cmalign.load_clip("toy")          # or "openai/clip-vit-base-patch32"
    image_emb = cmalign.embed_images(bundle, images)
    text_emb = cmalign.embed_texts(bundle, captions)

Modules (each says which notebook teaches it): models and checkpoint (load and
save a CLIP), features (model inputs -> unit rows), embed (batched embedding),
cache, images, losses, train, metrics, retrieval, geometry, plots, data,
naive (the original slow retrieval, for comparison), exercises, standin (an
offline stand-in for OpenAI's checkpoint) and the package ``toy`` (the
procedural world and its small CLIP).
"""

from . import (
    data,
    exercises,
    exercises_beyond,
    geometry,
    losses,
    metrics,
    plots,
    retrieval,
    toy,
)
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
    "embed_images",
    "embed_texts",
    "exercises",
    "exercises_beyond",
    "geometry",
    "load_clip",
    "losses",
    "metrics",
    "plots",
    "retrieval",
    "set_seed",
    "toy",
]

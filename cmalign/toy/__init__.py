"""The embedded world: procedural scenes with exact ground truth, and the small CLIP
trained on them.

- :mod:`.spec` — the vocabulary (colours, shapes, sizes, places, held-out pairs)
- :mod:`.draw` — paint a scene;  :mod:`.captions` — describe it
- :mod:`.world` — sample datasets, decide which captions fit which images
- :mod:`.model` — build the small ``transformers.CLIPModel`` and its processor
- :mod:`.train` — ``python -m cmalign.toy.train`` trains and saves it
- :mod:`.evaluate` — its quality on fresh data (retrieval and zero-shot)

Taught in notebooks/03_training_alignment.ipynb; used by every lesson.
"""

from .world import ToyDataset, make_dataset

__all__ = ["ToyDataset", "make_dataset"]

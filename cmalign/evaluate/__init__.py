"""The evaluation tools: the ``evaluate`` command and what it reads and writes.

- :mod:`.cli` — ``python -m cmalign.evaluate retrieval|zeroshot`` (and ``cmalign evaluate``)
- :mod:`.formats` — benchmark files on disk: Karpathy splits, COCO captions, ImageFolder, prompt sets
- :mod:`.clip_benchmark` — CLIP_benchmark's recall and zero-shot metrics, computed its way
- :mod:`.report` — the HTML page of failures

Taught in notebooks/05_retrieval_evaluation.ipynb.
"""

from .cli import PUBLISHED, build_parser, load_retrieval_data, main

__all__ = ["PUBLISHED", "build_parser", "load_retrieval_data", "main"]

"""Batched, L2-normalised image and text embeddings from any supported model.

``embed_images`` streams images through the vision tower batch by batch
(never all decoded images in memory), ``embed_texts`` tokenises as the
model's family does (:mod:`cmalign.inputs`: OpenAI's cleaning and padding to
the longest caption for CLIP, padding to 64 tokens for SigLIP) and warns
about truncation, and ``class_embeddings`` builds zero-shot classifiers with
prompt ensembling. Both embedding functions can reuse an on-disk cache
(:mod:`cmalign.cache`). Score the rows with ``bundle.logits`` /
``bundle.probabilities``. Taught in notebooks/01_clip_embeddings.ipynb.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from . import inputs
from .cache import cached_image_embeddings, cached_text_embeddings
from .features import image_features, text_features
from .images import ImageLike
from .models import ClipBundle


def _batches(n: int, batch_size: int, progress: bool, desc: str):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    starts = range(0, n, batch_size)
    # Not passing `disable` when a bar is wanted lets TQDM_DISABLE=1 (make html) hide it.
    off = {} if progress and n > batch_size else {"disable": True}
    return tqdm(starts, desc=desc, leave=False, **off)


def _autocast(bundle: ClipBundle, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=bundle.device.type, dtype=torch.bfloat16)


def preprocess_images(
    bundle: ClipBundle, images: Sequence[ImageLike], *, start: int = 0
) -> torch.Tensor:
    """Load, convert to RGB, resize, crop and normalise images for the vision tower
    (``bundle.inputs.images``; see :class:`cmalign.inputs.ImagePipeline`).

    ``start`` is the index of ``images[0]`` in the caller's list (for messages).

    Returns
    -------
    torch.Tensor of shape (n, 3, image_size, image_size), float32 on CPU.
    """
    return inputs.preprocess(bundle.inputs.images, images, start=start)


def tokenize(bundle: ClipBundle, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Tokens of ``texts`` as the model reads them (:func:`cmalign.inputs.tokenize`).

    Returns
    -------
    dict with ``input_ids`` (and ``attention_mask`` for CLIP) of shape (m, length).
    """
    return inputs.tokenize(bundle.inputs.texts, texts)


def embed_pixels(
    bundle: ClipBundle, pixel_values: torch.Tensor, *, autocast: bool = False
) -> torch.Tensor:
    """Embed already-preprocessed pixels.

    Parameters
    ----------
    pixel_values : torch.Tensor of shape (n, 3, H, W)

    Returns
    -------
    torch.Tensor of shape (n, embed_dim), float32, unit rows, on CPU.
    """
    with torch.inference_mode(), _autocast(bundle, autocast):
        return image_features(bundle.model, pixel_values.to(bundle.device)).cpu()


class _Batches(torch.utils.data.Dataset):
    """Batch b of ``images``, decoded and preprocessed (run in a worker process)."""

    def __init__(self, pipeline, images: Sequence[ImageLike], batch_size: int):
        self.pipeline, self.images, self.batch_size = pipeline, images, batch_size

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, b: int) -> torch.Tensor:
        start = b * self.batch_size
        batch = self.images[start : start + self.batch_size]
        return inputs.preprocess(self.pipeline, batch, start=start)


def embed_images(
    bundle: ClipBundle,
    images: Sequence[ImageLike],
    *,
    batch_size: int = 32,
    progress: bool = True,
    autocast: bool = False,
    cache_dir: str | None = None,
    num_workers: int = 0,
) -> torch.Tensor:
    """Embed images into the shared space.

    Parameters
    ----------
    bundle : ClipBundle
        From :func:`cmalign.load_clip`.
    images : sequence of paths, PIL images or uint8 arrays (H, W, 3)
        Every image is converted to RGB (CMYK, 16-bit, RGBA and palette images
        with a warning); unreadable ones raise an error naming the file.
    batch_size : int
        Images decoded and embedded at a time (memory stays bounded).
    progress : bool
        Show a tqdm progress bar.
    autocast : bool
        Run the tower under bfloat16 autocast: faster on CPUs and GPUs with
        bf16 units, several times slower on CPUs without them (measured by
        ``make bench``, see docs/results). Off by default.
    cache_dir : str, optional
        When given and every image is a file path, reuse embeddings cached on
        disk for this model and these file contents (see :mod:`cmalign.cache`);
        each batch is cached as it is computed, so an interrupted run resumes.
    num_workers : int
        Processes that decode and preprocess batches while the model runs
        (``torch.utils.data.DataLoader``); same preprocessing, same embeddings.
        0 (default) does it in this process, the fastest on a 2-core machine.

    Returns
    -------
    torch.Tensor of shape (n_images, embed_dim)
        float32, L2-normalised rows, on CPU.
    """
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise TypeError("images must be a sequence (list) of images or paths")
    if len(images) == 0:
        raise ValueError("images is empty")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    _batches(len(images), batch_size, False, "")  # validates batch_size

    def compute(todo: Sequence[ImageLike]):
        batches = torch.utils.data.DataLoader(
            _Batches(bundle.inputs.images, todo, batch_size),
            batch_size=None,
            num_workers=num_workers,
            pin_memory=bundle.device.type == "cuda",
        )
        off = {} if progress and len(todo) > batch_size else {"disable": True}
        for pixels in tqdm(batches, desc="embedding images", leave=False, **off):
            yield embed_pixels(bundle, pixels, autocast=autocast)

    if cache_dir is not None:
        return cached_image_embeddings(bundle, images, cache_dir, compute=compute)
    return torch.cat(list(compute(images)))


def embed_texts(
    bundle: ClipBundle,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    progress: bool = True,
    autocast: bool = False,
    cache_dir: str | None = None,
) -> torch.Tensor:
    """Embed captions into the shared space.

    Parameters
    ----------
    bundle : ClipBundle
    texts : sequence of str
        Non-empty strings, cleaned and tokenised as ``bundle.inputs.texts``
        says. Longer than the context (77 tokens for OpenAI CLIP, 64 for
        SigLIP) are truncated with a :class:`~cmalign.utils.TruncationWarning`
        saying how many (``.count``, ``.indices``).
    batch_size, progress, autocast
        As in :func:`embed_images`.
    cache_dir : str, optional
        Reuse embeddings cached for this model and these exact strings (the same
        checks as for images; see :mod:`cmalign.cache`).

    Returns
    -------
    torch.Tensor of shape (n_texts, embed_dim)
        float32, L2-normalised rows, on CPU.
    """
    inputs.check_texts(texts)
    _batches(len(texts), batch_size, False, "")  # validates batch_size

    def compute(todo: Sequence[str]):
        for start in _batches(len(todo), batch_size, progress, "embedding texts"):
            tokens = tokenize(bundle, todo[start : start + batch_size])
            tokens = {k: v.to(bundle.device) for k, v in tokens.items()}
            with torch.inference_mode(), _autocast(bundle, autocast):
                yield text_features(bundle.model, **tokens).cpu()

    if cache_dir is not None:
        return cached_text_embeddings(bundle, texts, cache_dir, compute=compute)
    return torch.cat(list(compute(texts)))


def class_embeddings(
    bundle: ClipBundle,
    classnames: Sequence[str],
    templates: Sequence[str] = ("{}",),
    *,
    cache_dir: str | None = None,
) -> torch.Tensor:
    """Zero-shot classifier weights by prompt ensembling (CLIP paper, sec. 3.1.4).

    Each class name is put in every template (``"a photo of a {}."``), the
    prompts are embedded, averaged and re-normalised. Score images against them
    with ``bundle.logits(image_emb, classes)`` (the family's own scores).

    Returns
    -------
    torch.Tensor of shape (n_classes, embed_dim), unit rows.
    """
    if not templates or any("{}" not in t for t in templates):
        raise ValueError("every template must contain '{}' for the class name")
    prompts = [t.format(c) for c in classnames for t in templates]
    emb = embed_texts(bundle, prompts, progress=False, cache_dir=cache_dir)
    emb = emb.view(len(classnames), len(templates), -1).mean(dim=1)
    return torch.nn.functional.normalize(emb, dim=-1)

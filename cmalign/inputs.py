"""Model inputs, written once: images to pixels and captions to tokens, as the authors do it.

Everything that feeds a tower (embedding, preparation for training, the
lessons) goes through here:

- :class:`ImagePipeline` turns RGB images into normalised pixels. Its
  reference path follows the checkpoint's own pipeline: OpenAI's and
  open_clip's torchvision transforms resize the shorter side (bicubic, long side
  ``int(size * long / short)``) and centre-crop at ``round((H - size) / 2)``;
  transformers' ``CLIPImageProcessor`` floors that offset instead, so an image
  whose margin is odd lands one pixel off. ``crop_offset="floor"`` or
  ``preprocessing="transformers"`` (the image processor itself) switch back.
- :class:`TextInputs` says how captions become tokens: the cleaning
  (:func:`clean_text`: OpenAI's ``ftfy.fix_text``, ``html.unescape`` twice and
  whitespace collapsing, which transformers' CLIP tokenizer skips), the padding
  (``"max_length"`` for SigLIP, which pools the last position), whether an
  attention mask is passed, and the context length. :func:`tokenize` warns with
  a :class:`~cmalign.utils.TruncationWarning` (``.count``, ``.indices``) when
  captions are cut.
- :func:`encode_dataset` / :func:`tokenize_texts` preprocess a whole dataset
  once before training.

Which settings a checkpoint gets is decided in :mod:`cmalign.families`. This
module passes 300 lines because pixels and tokens are the two halves of one
job, what a model reads, and issue 17 asked for that job in one place.
Taught in notebooks/01_clip_embeddings.ipynb (pixels, tokens) and
notebooks/03_training_alignment.ipynb (preprocess once).
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .images import ImageLike, load_rgb_images
from .utils import TruncationWarning, quiet_transformers

CLEANINGS = ("openai", "lower", "none")
CROP_OFFSETS = ("round", "floor")
PREPROCESSINGS = ("reference", "transformers")


def _get(size, key: str):
    """``size[key]`` for transformers 4 dicts and transformers 5 ``SizeDict``."""
    if size is None or isinstance(size, int):
        return size if key in ("shortest_edge", "height", "width") else None
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


@dataclass(frozen=True)
class ImagePipeline:
    """Resize, crop and normalise RGB images for a vision tower.

    Attributes
    ----------
    size : (height, width)
        Pixels the tower sees.
    mean, std : three floats
        Per-channel normalisation after scaling to [0, 1].
    shortest_edge : int or None
        Resize the shorter side to this, keeping the aspect ratio, then centre
        crop to ``size``; None resizes straight to ``size`` ("squash", SigLIP).
    resample : int
        PIL filter (3 = bicubic, 2 = bilinear).
    crop_offset : {"round", "floor"}
        Centre-crop offset rule: torchvision's (OpenAI, open_clip) or
        transformers'.
    processor : optional
        A transformers image processor to run instead of the steps above
        (``preprocessing="transformers"``).
    """

    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    shortest_edge: int | None = None
    resample: int = Image.BICUBIC
    crop_offset: str = "round"
    processor: object = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.crop_offset not in CROP_OFFSETS:
            raise ValueError(f"crop_offset must be one of {CROP_OFFSETS}")

    @classmethod
    def from_image_processor(
        cls, image_processor, *, preprocessing: str = "reference"
    ) -> ImagePipeline:
        """The settings of a transformers image processor, run by the reference path
        (``preprocessing="reference"``) or by the processor itself ("transformers")."""
        if preprocessing not in PREPROCESSINGS:
            raise ValueError(
                f"preprocessing must be one of {PREPROCESSINGS}, got {preprocessing!r}"
            )
        ip = image_processor
        crop = (
            _get(getattr(ip, "crop_size", None), "height"),
            _get(getattr(ip, "crop_size", None), "width"),
        )
        edge = _get(ip.size, "shortest_edge")
        if edge and not getattr(ip, "do_center_crop", False):
            # shortest edge kept, no crop: sizes vary by image; only the processor
            # itself defines that output, so run it (no silent squash)
            preprocessing = "transformers"
        if edge and crop[0]:
            size = crop
        else:
            size, edge = (
                (_get(ip.size, "height") or edge, _get(ip.size, "width") or edge),
                None,
            )
        return cls(
            size=(int(size[0]), int(size[1])),
            mean=tuple(float(m) for m in ip.image_mean),
            std=tuple(float(s) for s in ip.image_std),
            shortest_edge=None if edge is None else int(edge),
            resample=int(ip.resample),
            processor=ip if preprocessing == "transformers" else None,
        )

    def describe(self) -> dict:
        """What changes the pixels (for cache keys and reports)."""
        if self.processor is not None:
            return {"transformers": self.processor.to_dict()}
        return {
            "size": list(self.size),
            "shortest_edge": self.shortest_edge,
            "mean": list(self.mean),
            "std": list(self.std),
            "resample": self.resample,
            "crop_offset": self.crop_offset,
        }

    def resize_and_crop(self, image: Image.Image) -> Image.Image:
        """One RGB image, resized and centre-cropped to ``size``."""
        height, width = self.size
        if self.shortest_edge is None:
            return image.resize((width, height), self.resample)
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(self.shortest_edge * long / short)
        new_w, new_h = (
            (self.shortest_edge, new_long) if w <= h else (new_long, self.shortest_edge)
        )
        if (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), self.resample)
        if new_w < width or new_h < height:
            raise ValueError(
                f"image resized to {new_w}x{new_h} is smaller than the {width}x"
                f"{height} crop (shortest_edge {self.shortest_edge})"
            )
        if self.crop_offset == "round":
            top, left = (
                int(round((new_h - height) / 2)),
                int(round((new_w - width) / 2)),
            )
        else:
            top, left = (new_h - height) // 2, (new_w - width) // 2
        return image.crop((left, top, left + width, top + height))

    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """RGB images -> pixels of shape (n, 3, height, width), float32."""
        if self.processor is not None:
            with quiet_transformers():
                out = self.processor(images=list(images), return_tensors="pt")
            return out["pixel_values"]
        mean = torch.tensor(self.mean, dtype=torch.float32)[:, None, None]
        std = torch.tensor(self.std, dtype=torch.float32)[:, None, None]
        pixels = []
        for image in images:
            array = np.asarray(self.resize_and_crop(image), dtype=np.uint8)
            x = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255)
            pixels.append((x - mean) / std)  # as torchvision's ToTensor + Normalize
        return torch.stack(pixels)


def preprocess(
    pipeline: ImagePipeline, images: Sequence[ImageLike], *, start: int = 0
) -> torch.Tensor:
    """Load images (paths, PIL images, arrays), convert to RGB and run ``pipeline``.

    ``start`` is the index of ``images[0]`` in the caller's list (for messages).

    Returns
    -------
    torch.Tensor of shape (n, 3, height, width), float32 on CPU.
    """
    return pipeline(load_rgb_images(images, start=start))


def clean_text(text: str, *, cleaning: str = "openai") -> str:
    """Clean one caption before tokenising.

    ``"openai"``: OpenAI's and open_clip's ``basic_clean`` + ``whitespace_clean``
    + lower case: ``ftfy.fix_text`` (mojibake, curly quotes, ligatures,
    full-width forms), ``html.unescape`` twice (``&amp;amp;``), whitespace runs
    to one space. ``"lower"``: lower case and whitespace only (for tokenizers
    that were trained lower-cased but do not lower-case themselves).
    ``"none"``: unchanged (transformers' own behaviour).
    """
    if cleaning == "none":
        return text
    if cleaning == "lower":
        return " ".join(text.lower().split())
    if cleaning != "openai":
        raise ValueError(f"cleaning must be one of {CLEANINGS}, got {cleaning!r}")
    try:
        import ftfy
    except ImportError:
        raise ImportError(
            "OpenAI's text cleaning needs ftfy: pip install ftfy (or pass "
            "cleaning='none' for transformers' raw tokenisation)"
        ) from None
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


@dataclass
class TextInputs:
    """How captions become token ids for one model.

    Attributes
    ----------
    tokenizer : transformers tokenizer
    context_length : int
        Tokens the text tower reads (77 for CLIP, 64 for SigLIP).
    cleaning : {"openai", "lower", "none"}
        See :func:`clean_text`.
    padding : {"longest", "max_length"}
        Pad to the longest caption of the batch, or always to ``context_length``.
    attention_mask : bool
        Pass the mask to the model (CLIP) or not (SigLIP attends to its padding).
    """

    tokenizer: object
    context_length: int
    cleaning: str = "openai"
    padding: str = "longest"
    attention_mask: bool = True

    def describe(self) -> dict:
        """What changes the token ids (for cache keys and reports)."""
        return {
            "tokenizer": type(self.tokenizer).__name__,
            "vocab_size": len(self.tokenizer),
            "context_length": self.context_length,
            "cleaning": self.cleaning,
            "padding": self.padding,
            "attention_mask": self.attention_mask,
        }


@dataclass
class ModelInputs:
    """The image pipeline and text settings of one model (``bundle.inputs``)."""

    images: ImagePipeline
    texts: TextInputs

    @classmethod
    def from_processor(
        cls,
        processor,
        *,
        context_length: int | None = None,
        cleaning: str = "openai",
        padding: str = "longest",
        attention_mask: bool = True,
        preprocessing: str = "reference",
    ) -> ModelInputs:
        """Inputs from a transformers processor (image processor + tokenizer).

        ``context_length`` defaults to the tokenizer's ``model_max_length`` when it
        has a real one (OpenAI's published tokenizer files set none: pass
        ``model.config.text_config.max_position_embeddings``).
        """
        tokenizer = processor.tokenizer
        if context_length is None:
            context_length = tokenizer.model_max_length
            if context_length > 100_000:  # transformers' "no limit" placeholder
                raise ValueError(
                    "the tokenizer sets no model_max_length; pass context_length="
                    "model.config.text_config.max_position_embeddings"
                )
        images = ImagePipeline.from_image_processor(
            processor.image_processor, preprocessing=preprocessing
        )
        texts = TextInputs(
            tokenizer, int(context_length), cleaning, padding, attention_mask
        )
        return cls(images, texts)

    def describe(self) -> dict:
        return {"images": self.images.describe(), "texts": self.texts.describe()}


def check_texts(texts: Sequence[str]) -> None:
    """Raise a clear error unless ``texts`` is a non-empty list of non-empty strings."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("texts must be a list of strings (wrap a single caption in [])")
    if len(texts) == 0:
        raise ValueError("texts is empty")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, not str: {text!r}")
        if not text.strip():
            raise ValueError(f"text {i} is empty")


def warn_if_truncated(tokenizer, texts: Sequence[str], *, limit: int) -> list[int]:
    """Warn when captions are longer than ``limit`` tokens; return their indices.

    The :class:`~cmalign.utils.TruncationWarning` says how many captions will be
    cut and which is first, and carries ``.indices`` / ``.count`` / ``.limit``.
    """
    with quiet_transformers():  # its "longer than the maximum" notice: ours is clearer
        ids = tokenizer(list(texts), truncation=False)["input_ids"]
    lengths = [len(row) for row in ids]
    too_long = [i for i, n in enumerate(lengths) if n > limit]
    if too_long:
        warnings.warn(
            TruncationWarning(
                f"{len(too_long)} of {len(texts)} captions exceed the {limit}-token "
                f"context and were truncated (first: text {too_long[0]}, "
                f"{lengths[too_long[0]]} tokens)",
                indices=too_long,
                limit=limit,
            ),
            stacklevel=4,
        )
    return too_long


def tokenize(spec: TextInputs, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Clean, tokenise, pad and truncate captions as ``spec`` says.

    Returns
    -------
    dict with ``input_ids`` (and ``attention_mask`` when ``spec.attention_mask``)
    of shape (m, length): the longest caption, or ``context_length``.
    """
    check_texts(texts)
    cleaned = [clean_text(t, cleaning=spec.cleaning) for t in texts]
    warn_if_truncated(spec.tokenizer, cleaned, limit=spec.context_length)
    padding = True if spec.padding == "longest" else "max_length"
    with quiet_transformers():
        tokens = spec.tokenizer(
            cleaned,
            padding=padding,
            truncation=True,
            max_length=spec.context_length,
            return_tensors="pt",
        )
    keys = ("input_ids", "attention_mask") if spec.attention_mask else ("input_ids",)
    return {k: tokens[k] for k in keys}


def _inputs_of(processor_or_inputs, context_length: int | None) -> ModelInputs:
    if isinstance(processor_or_inputs, ModelInputs):
        return processor_or_inputs
    return ModelInputs.from_processor(
        processor_or_inputs, context_length=context_length
    )


def tokenize_texts(
    processor_or_inputs, texts: Sequence[str], *, context_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Tokens of ``texts`` for training: :func:`tokenize` with a processor's settings.

    ``processor_or_inputs`` is a :class:`ModelInputs` (``bundle.inputs``) or a
    transformers CLIP processor (then OpenAI's cleaning, padding to the longest).
    """
    return tokenize(_inputs_of(processor_or_inputs, context_length).texts, texts)


def encode_dataset(
    processor_or_inputs,
    dataset,
    *,
    context_length: int | None = None,
    batch_size: int = 512,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Preprocess every image and caption of ``dataset`` once (before training).

    Parameters
    ----------
    processor_or_inputs : ModelInputs or transformers processor
    dataset
        Has ``images`` and ``captions``.
    context_length : int, optional
        Where captions are cut (with a warning); see
        :meth:`ModelInputs.from_processor`.
    batch_size : int
        Images decoded at a time.

    Returns
    -------
    pixel_values : torch.Tensor of shape (n_images, 3, H, W)
    tokens : dict of input_ids (and attention_mask), each (n_texts, longest)
    """
    inputs = _inputs_of(processor_or_inputs, context_length)
    pixels = [
        preprocess(inputs.images, dataset.images[i : i + batch_size], start=i)
        for i in range(0, len(dataset.images), batch_size)
    ]
    return torch.cat(pixels), tokenize(inputs.texts, dataset.captions)

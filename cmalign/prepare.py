"""Preprocess a dataset once before training: every image to pixels, every caption to tokens.

Training and evaluation loops then only index tensors
(:mod:`cmalign.train`). Captions longer than the model's context are cut
with a warning that names them (:func:`cmalign.embed.warn_if_truncated`).
Taught in notebooks/03_training_alignment.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import CLIPProcessor

from .embed import warn_if_truncated
from .images import load_rgb_images


def encode_dataset(
    processor: CLIPProcessor,
    dataset,
    context_length: int | None = None,
    batch_size: int = 512,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Preprocess every image and caption once.

    Parameters
    ----------
    context_length : int, optional
        Where captions are cut (with a warning): the model's
        ``config.text_config.max_position_embeddings``. Defaults to the
        tokenizer's ``model_max_length`` when it has a real one (OpenAI's
        published tokenizer files set none, so pass it for real models).

    Returns
    -------
    pixel_values : torch.Tensor of shape (n_images, 3, H, W)
    tokens : dict of input_ids and attention_mask, each (n_texts, longest)
    """
    if context_length is None:
        context_length = processor.tokenizer.model_max_length
        if context_length > 100_000:  # transformers' "no limit" placeholder
            raise ValueError(
                "the tokenizer sets no model_max_length; pass context_length="
                "model.config.text_config.max_position_embeddings"
            )
    pixels = [
        processor.image_processor(
            images=load_rgb_images(dataset.images[i : i + batch_size]),
            return_tensors="pt",
        )["pixel_values"]
        for i in range(0, len(dataset.images), batch_size)
    ]
    return torch.cat(pixels), tokenize_texts(
        processor, dataset.captions, context_length
    )


def tokenize_texts(
    processor: CLIPProcessor, texts: Sequence[str], context_length: int
) -> dict[str, torch.Tensor]:
    """Tokens of ``texts``, padded to the longest, cut at ``context_length`` (with a warning).

    Returns
    -------
    dict of input_ids and attention_mask, each (n_texts, longest)
    """
    warn_if_truncated(processor.tokenizer, texts, context_length)
    tokens = processor.tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=context_length,
        return_tensors="pt",
    )
    return {k: tokens[k] for k in ("input_ids", "attention_mask")}

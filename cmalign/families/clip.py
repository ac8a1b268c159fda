"""The CLIP family: transformers ``CLIPModel`` checkpoints, scored by a softmax over candidates.

OpenAI's hub repos (``openai/clip-vit-base-patch32``), LAION's HF conversions,
folders written by ``save_pretrained`` and the project's toy model. Scores are
``logit_scale.exp() * cos`` with the scale clamped at 100 (as in training);
probabilities are a softmax over the candidates, so they depend on which
candidates are shown. Texts get OpenAI's cleaning (:func:`cmalign.inputs.clean_text`)
unless ``cleaning="none"``; images follow the reference pipeline (torchvision's
rounding crop) unless ``preprocessing="transformers"``.
Taught in notebooks/01_clip_embeddings.ipynb.
"""

from __future__ import annotations

import math

import torch
from transformers import CLIPModel, CLIPProcessor

from ..checkpoint import from_pretrained
from ..inputs import ModelInputs
from . import Loaded

#: The ceiling CLIP training clamps the learned scale to (ln 100).
LOGIT_SCALE_MAX = math.log(100.0)


def inputs_for(
    model: CLIPModel,
    processor: CLIPProcessor,
    *,
    cleaning: str | None = None,
    preprocessing: str = "reference",
) -> ModelInputs:
    """CLIP's inputs: OpenAI's cleaning unless told otherwise, padding to the longest
    caption with a mask, the context length from the model config."""
    return ModelInputs.from_processor(
        processor,
        context_length=model.config.text_config.max_position_embeddings,
        cleaning=cleaning or "openai",
        padding="longest",
        attention_mask=True,
        preprocessing=preprocessing,
    )


def load(
    source: str,
    *,
    local_only: bool,
    weights_file: str | None,
    cache_dir: str | None = None,
    cleaning: str | None = None,
    preprocessing: str = "reference",
) -> Loaded:
    """Load a CLIP checkpoint (a folder or hub id; see :func:`cmalign.checkpoint.from_pretrained`)."""
    model, processor, weights_file = from_pretrained(
        CLIPModel,
        CLIPProcessor,
        source,
        local_only=local_only,
        weights_file=weights_file,
        cache_dir=cache_dir,
    )
    inputs = inputs_for(
        model, processor, cleaning=cleaning, preprocessing=preprocessing
    )
    return Loaded(model, processor, inputs, weights_file)


def logits(model, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """``s * image_emb @ text_emb.T`` with s = exp(logit_scale) clamped at 100.

    Returns
    -------
    torch.Tensor of shape (n_images, n_texts), float32 on the embeddings' device.
    """
    scale = model.logit_scale.detach().float().clamp(max=LOGIT_SCALE_MAX).exp()
    return scale.to(image_emb.device) * image_emb.float() @ text_emb.float().T


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the texts of each image row: each row sums to 1."""
    return logits.softmax(dim=-1)

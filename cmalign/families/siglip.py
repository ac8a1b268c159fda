"""The SigLIP family: transformers ``SiglipModel``, an independent sigmoid per image-text pair.

``google/siglip-*`` and SigLIP 2's fixed-resolution checkpoints
(``google/siglip2-base-patch16-224``: model_type ``siglip``, Gemma tokenizer).
Scores are ``logit_scale.exp() * cos + logit_bias`` (the scale is not
clamped: SigLIP learns ~110); probabilities are ``sigmoid(logits)``, one per
pair, so they do not depend on the other candidates and need not sum to 1.

Texts are padded to ``max_length`` (64 tokens) always and given no attention
mask: the text tower pools the *last* position, so it was trained on padded
sequences, and ``padding=True`` moves the embeddings silently (the pitfall
transformers' docs warn about; tests/test_families_siglip.py measures it).
SigLIP's own tokenizer lower-cases and strips punctuation itself; a tokenizer
that is configured ``do_lower_case`` but does not lower-case (SigLIP 2's Gemma)
gets lower-cased here. Images: resized to the square size without a crop
(the published ``preprocessor_config.json``). The sentencepiece tokenizer needs
``sentencepiece`` and ``protobuf``. Taught in notebooks/01_clip_embeddings.ipynb
and notebooks/02_contrastive_loss.ipynb.
"""

from __future__ import annotations

import importlib.util

import torch

from ..checkpoint import from_pretrained
from ..inputs import ModelInputs
from . import Loaded

INSTALL = (
    "SigLIP's tokenizer needs sentencepiece and protobuf: "
    "pip install sentencepiece protobuf (or pip install 'cmalign[siglip]')"
)


def require_sentencepiece() -> None:
    """Raise one clear ImportError when SigLIP's tokenizer cannot be read."""
    missing = [m for m in ("sentencepiece", "google.protobuf") if not _found(m)]
    if missing:
        raise ImportError(f"{INSTALL} (missing: {', '.join(missing)})")


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package (google) is missing
        return False


def default_cleaning(tokenizer) -> str:
    """``"none"`` for SigLIP's tokenizer (it lower-cases and strips punctuation
    itself), ``"lower"`` for one that is configured lower-case but is not."""
    if type(tokenizer).__name__.startswith("Siglip"):
        return "none"
    return "lower" if tokenizer.init_kwargs.get("do_lower_case") else "none"


def inputs_for(
    model, processor, *, cleaning: str | None = None, preprocessing: str = "reference"
) -> ModelInputs:
    """SigLIP's inputs: always padded to the context (64), no attention mask."""
    return ModelInputs.from_processor(
        processor,
        context_length=model.config.text_config.max_position_embeddings,
        cleaning=cleaning or default_cleaning(processor.tokenizer),
        padding="max_length",
        attention_mask=False,
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
    """Load a SigLIP checkpoint (folder or hub id) with its processor."""
    from transformers import AutoProcessor, SiglipModel

    require_sentencepiece()
    try:
        model, processor, weights_file = from_pretrained(
            SiglipModel,
            AutoProcessor,
            source,
            local_only=local_only,
            weights_file=weights_file,
            cache_dir=cache_dir,
        )
    except ValueError as err:  # "Unrecognized processing class": tokenizer unreadable
        raise ImportError(
            f"cannot build SigLIP's processor for '{source}' ({err}); {INSTALL}"
        ) from None
    inputs = inputs_for(
        model, processor, cleaning=cleaning, preprocessing=preprocessing
    )
    return Loaded(model, processor, inputs, weights_file)


def logits(model, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """``exp(logit_scale) * image_emb @ text_emb.T + logit_bias``, as
    ``SiglipModel(...).logits_per_image`` computes them.

    Returns
    -------
    torch.Tensor of shape (n_images, n_texts), float32.
    """
    scale = model.logit_scale.detach().float().exp().to(image_emb.device)
    bias = model.logit_bias.detach().float().to(image_emb.device)
    return scale * image_emb.float() @ text_emb.float().T + bias


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """``sigmoid(logits)``: an independent match probability per pair."""
    return torch.sigmoid(logits)

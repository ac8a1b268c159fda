"""The one encode path: model inputs -> float32 unit rows in the shared space.

Every place that runs a tower for features (embedding, training, the
lessons) calls :func:`image_features` or :func:`text_features` (only
:mod:`cmalign.course.naive` runs the full forward, on purpose). They are
the only code that knows how ``transformers`` returns projected features:
a plain tensor in 4.x, a ``BaseModelOutputWithPooling`` whose
``.pooler_output`` holds them in 5.x. The same two methods exist on every
family's model (``CLIPModel``, ``SiglipModel``); what each family feeds them
(padding, attention mask) is decided in :mod:`cmalign.families` and
:mod:`cmalign.inputs`. Gradients flow through (training uses
them too); wrap calls in ``torch.inference_mode()`` to embed.
Taught in notebooks/01_clip_embeddings.ipynb ("why normalise").
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel


def projected(output) -> torch.Tensor:
    """The projected features from ``get_*_features`` in transformers 4 or 5.

    Returns
    -------
    torch.Tensor of shape (n, embed_dim), as the model computed it (not normalised).
    """
    if isinstance(output, torch.Tensor):  # transformers 4.x
        return output
    return output.pooler_output  # transformers 5.x


def image_features(model: PreTrainedModel, pixel_values: torch.Tensor) -> torch.Tensor:
    """Embed preprocessed pixels.

    Parameters
    ----------
    model : transformers.CLIPModel or transformers.SiglipModel
    pixel_values : torch.Tensor of shape (n, 3, H, W), on the model's device

    Returns
    -------
    torch.Tensor of shape (n, embed_dim)
        float32, L2-normalised rows, on the model's device.
    """
    out = projected(model.get_image_features(pixel_values=pixel_values))
    return torch.nn.functional.normalize(out.float(), dim=-1)


def text_features(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Embed tokenised captions.

    Parameters
    ----------
    model : transformers.CLIPModel or transformers.SiglipModel
    input_ids, attention_mask : torch.Tensor of shape (m, length)
        ``attention_mask`` None for SigLIP (it attends to its padding).

    Returns
    -------
    torch.Tensor of shape (m, embed_dim)
        float32, L2-normalised rows, on the model's device.
    """
    out = projected(
        model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
    )
    return torch.nn.functional.normalize(out.float(), dim=-1)

"""The contrastive training loop: align a CLIP's two towers with ``clip_loss``.

``fit`` trains any ``transformers.CLIPModel`` on image-caption pairs (the toy
world, or a caption folder of your own) with AdamW, linear warm-up then
cosine decay, CLIP's learnable temperature clamped at ln(100), and a history
of loss, temperature and held-out recall for plotting. No global state: the
seed, the data order and the model are all passed in.
Taught in notebooks/03_training_alignment.ipynb.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm
from transformers import CLIPModel, CLIPProcessor

from .images import load_rgb_images
from .losses import clamp_logit_scale_, clip_loss
from .metrics import retrieval_metrics


def encode_dataset(
    processor: CLIPProcessor, dataset, batch_size: int = 512
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Preprocess every image and caption once.

    Returns
    -------
    pixel_values : torch.Tensor of shape (n_images, 3, H, W)
    tokens : dict of input_ids and attention_mask, each (n_texts, longest)
    """
    pixels = [
        processor.image_processor(
            images=load_rgb_images(dataset.images[i : i + batch_size]),
            return_tensors="pt",
        )["pixel_values"]
        for i in range(0, len(dataset.images), batch_size)
    ]
    tokens = processor.tokenizer(
        list(dataset.captions), padding=True, truncation=True, return_tensors="pt"
    )
    return torch.cat(pixels), dict(tokens)


def _features(
    model: CLIPModel, pixel_values, tokens
) -> tuple[torch.Tensor, torch.Tensor]:
    image = model.get_image_features(pixel_values=pixel_values).pooler_output
    text = model.get_text_features(**tokens).pooler_output
    return (
        torch.nn.functional.normalize(image, dim=-1),
        torch.nn.functional.normalize(text, dim=-1),
    )


@torch.no_grad()
def evaluate(
    model: CLIPModel,
    pixel_values: torch.Tensor,
    tokens: dict,
    relevance: torch.Tensor,
    batch_size: int = 512,
) -> dict[str, float]:
    """Retrieval metrics of ``model`` on pre-encoded data (see :func:`encode_dataset`)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    image_emb, text_emb = [], []
    for i in range(0, len(pixel_values), batch_size):
        batch = {k: v[i : i + batch_size].to(device) for k, v in tokens.items()}
        image, text = _features(
            model, pixel_values[i : i + batch_size].to(device), batch
        )
        image_emb.append(image.cpu())
        text_emb.append(text.cpu())
    model.train(was_training)
    return retrieval_metrics(
        torch.cat(image_emb), torch.cat(text_emb), relevance=relevance
    )


def _positives(
    dataset, text_idx: torch.Tensor, image_idx: torch.Tensor
) -> torch.Tensor:
    """positives[i, j]: caption j describes image i (same image, or the world says so)."""
    same = (
        image_idx[:, None] == torch.as_tensor(dataset.text_to_image)[text_idx][None, :]
    )
    between = getattr(dataset, "relevance_between", None)
    if between is None:
        return same
    return same | between(text_idx.tolist(), image_idx.tolist()).T


def _param_groups(model: CLIPModel, weight_decay: float) -> list[dict]:
    """AdamW groups of the trainable parameters; no decay on gains, biases,
    embeddings and the temperature (as in open_clip)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        plain = param.ndim < 2 or "embedding" in name or "logit_scale" in name
        (no_decay if plain else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def fit(
    model: CLIPModel,
    processor: CLIPProcessor,
    dataset,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    warmup: int | None = None,
    weight_decay: float = 0.1,
    eval_dataset=None,
    eval_every: int = 100,
    seed: int = 0,
    multi_positive: bool = True,
    train_only: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` in place with the symmetric CLIP loss.

    Parameters
    ----------
    model, processor
        A ``CLIPModel`` (toy or real) and its processor.
    dataset
        Has ``images``, ``captions`` and ``text_to_image`` (a
        :class:`~cmalign.toyworld.ToyDataset` or :class:`~cmalign.data.CaptionSet`).
        Each step samples ``batch_size`` captions with their images.
    steps, batch_size, lr, weight_decay
        Optimisation settings (AdamW).
    warmup : int, optional
        Linear warm-up steps (default 5 % of ``steps``), then cosine decay to 0.
    eval_dataset : optional
        Scored every ``eval_every`` steps with its ``relevance()`` (or
        ``text_to_image``); the recalls go into the history.
    multi_positive : bool
        Count every caption that fits an image in the batch as a positive
        (``clip_loss(..., positives=...)``); False uses plain ``arange(n)``.
    train_only : sequence of str, optional
        Train only parameters whose name contains one of these (e.g.
        ``["projection"]`` to fine-tune a pretrained CLIP's heads).
    device, progress, callback
        ``callback(record)`` is called after every logged step.

    Returns
    -------
    dict of lists
        ``step``, ``loss``, ``logit_scale`` and ``lr`` per step; ``eval_step``,
        ``eval_text_to_image_R@1``, ``eval_image_to_text_R@1`` per evaluation.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.to(device).train()
    pixel_values, tokens = encode_dataset(processor, dataset)
    text_to_image = torch.as_tensor(dataset.text_to_image)
    evaluation = None
    if eval_dataset is not None:
        relevance = (
            eval_dataset.relevance() if hasattr(eval_dataset, "relevance") else None
        )
        if relevance is None:
            from .metrics import relevance_from_index

            relevance = relevance_from_index(
                eval_dataset.text_to_image, len(eval_dataset.images)
            )
        evaluation = (*encode_dataset(processor, eval_dataset), relevance)
    frozen = [
        param
        for name, param in model.named_parameters()
        if train_only is not None
        and not any(key in name for key in train_only)
        and param.requires_grad
    ]
    for param in frozen:  # no gradients for them; unfrozen again when fit returns
        param.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        _param_groups(model, weight_decay),
        lr=lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    warmup = max(1, int(0.05 * steps)) if warmup is None else warmup

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    history: dict[str, list[float]] = {
        k: []
        for k in (
            "step",
            "loss",
            "logit_scale",
            "lr",
            "eval_step",
            "eval_text_to_image_R@1",
            "eval_image_to_text_R@1",
        )
    }

    def run_eval(step: int) -> None:
        metrics = evaluate(model, *evaluation)
        history["eval_step"].append(step)
        for key in ("text_to_image_R@1", "image_to_text_R@1"):
            history[f"eval_{key}"].append(metrics[key])

    if evaluation is not None:
        run_eval(0)
    start = time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc="training", disable=not progress)
    for step in bar:
        text_idx = torch.randint(len(text_to_image), (batch_size,), generator=generator)
        image_idx = text_to_image[text_idx]
        batch_tokens = {k: v[text_idx].to(device) for k, v in tokens.items()}
        image_emb, text_emb = _features(
            model, pixel_values[image_idx].to(device), batch_tokens
        )
        positives = _positives(dataset, text_idx, image_idx) if multi_positive else None
        positives = positives.to(device) if positives is not None else None
        loss = clip_loss(
            image_emb, text_emb, model.logit_scale.exp(), positives=positives
        )
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {loss.item()} at step {step}; lower lr"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        clamp_logit_scale_(model.logit_scale)
        record = {
            "step": step,
            "loss": loss.item(),
            "logit_scale": model.logit_scale.exp().item(),
            "lr": optimizer.param_groups[0]["lr"],
        }
        for key, value in record.items():
            history[key].append(value)
        if evaluation is not None and (step % eval_every == 0 or step == steps):
            run_eval(step)
            record["eval_text_to_image_R@1"] = history["eval_text_to_image_R@1"][-1]
        bar.set_postfix(
            loss=f"{record['loss']:.3f}", scale=f"{record['logit_scale']:.1f}"
        )
        if callback is not None:
            callback(record)
    history["seconds"] = [time.perf_counter() - start]
    for param in frozen:
        param.requires_grad_(True)
    model.eval()
    return history

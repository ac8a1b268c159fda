"""The contrastive training loop: align a CLIP's two towers with ``clip_loss``.

``fit`` trains any ``transformers.CLIPModel`` on image-caption pairs (the toy
world, or a caption folder of your own) with AdamW, linear warm-up then
cosine decay (:func:`~cmalign.optim.warmup_cosine`), CLIP's learnable
temperature clamped at ln(100), optional freezing
(:func:`~cmalign.optim.freeze_all_but`), and a history of loss, scale and
held-out recall (:func:`retrieval_on_encoded`) for plotting. One step is
:func:`train_step`; :func:`train_loop` is the one loop (optimiser, schedule,
history, callback) that ``fit`` and the NegCLIP fine-tuning
(:mod:`cmalign.toy.negclip`) feed with batches; the optimiser's pieces live in
:mod:`cmalign.optim`. The seed, the data order and the model are passed in
(``fit`` also seeds torch's global generator, and says so). The module
passes 300 lines because it holds one idea whole: a step, the one loop and
fit's batches, read top to bottom as lesson 03 teaches them.
notebooks/03_training_alignment.ipynb writes the same loop out by hand from
these pieces; ``fit`` wraps it for reuse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import CLIPModel, CLIPProcessor

from .features import image_features, text_features
from .inputs import encode_dataset, tokenize_texts
from .losses import clamp_logit_scale_, clip_loss
from .metrics import retrieval_metrics
from .optim import freeze_all_but, param_groups, warmup_cosine
from .pairs import PairDataset, check_pair_dataset


@torch.no_grad()
def retrieval_on_encoded(
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
        image_emb.append(
            image_features(model, pixel_values[i : i + batch_size].to(device)).cpu()
        )
    for i in range(0, len(tokens["input_ids"]), batch_size):
        batch = {k: v[i : i + batch_size].to(device) for k, v in tokens.items()}
        text_emb.append(text_features(model, **batch).cpu())
    model.train(was_training)
    return retrieval_metrics(
        torch.cat(image_emb), torch.cat(text_emb), relevance=relevance
    )


def batch_positives(
    dataset: PairDataset, text_idx: torch.Tensor, image_idx: torch.Tensor
) -> torch.Tensor:
    """positives[i, j]: caption j describes image i (same image, or the world says so).

    Returns
    -------
    torch.Tensor of shape (n_images, n_texts), bool — the orientation of
    ``logits_per_image``.
    """
    same = (
        image_idx[:, None] == torch.as_tensor(dataset.text_to_image)[text_idx][None, :]
    )
    return same | dataset.relevance_between(text_idx.tolist(), image_idx.tolist()).T


def train_step(
    model: CLIPModel,
    optimizer: torch.optim.Optimizer,
    pixel_values: torch.Tensor,
    tokens: dict[str, torch.Tensor],
    positives: torch.Tensor | None = None,
    negative_tokens: dict[str, torch.Tensor] | None = None,
) -> float:
    """One optimiser step on one batch of pairs; returns the loss.

    ``negative_tokens`` (input_ids, attention_mask) are hard-negative captions,
    encoded and passed to ``clip_loss(..., hard_negatives=...)``. The
    log-scale t (``model.logit_scale``) is clamped after the step (s = e^t <= 100).
    """
    image_emb = image_features(model, pixel_values)
    text_emb = text_features(model, **tokens)
    hard = None if negative_tokens is None else text_features(model, **negative_tokens)
    loss = clip_loss(
        image_emb,
        text_emb,
        model.logit_scale.exp(),
        positives=positives,
        hard_negatives=hard,
    )
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss became {loss.item()}; lower lr")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    clamp_logit_scale_(model.logit_scale)
    return loss.item()


def _eval_data(processor: CLIPProcessor, eval_dataset, context_length: int):
    relevance = check_pair_dataset(eval_dataset, "eval_dataset").relevance()
    return (
        *encode_dataset(processor, eval_dataset, context_length=context_length),
        relevance,
    )


HISTORY_KEYS = (
    "step",
    "loss",
    "scale",
    "lr",
    "eval_step",
    "eval_text_to_image_R@1",
    "eval_image_to_text_R@1",
)


@dataclass
class Batch:
    """One step's data for :func:`train_loop`, already model inputs (on any device).

    Attributes
    ----------
    pixel_values : torch.Tensor of shape (n_images, 3, H, W)
    tokens : dict of input_ids, attention_mask, each (n_texts, length)
    positives : torch.Tensor of shape (n_images, n_texts + n_negatives), bool, optional
        Which captions fit which image (``None``: ``arange(n)`` pairs).
    negative_tokens : dict of input_ids, attention_mask, each (n_negatives, length), optional
        Hard-negative captions (extra image->text columns).
    """

    pixel_values: torch.Tensor
    tokens: dict[str, torch.Tensor]
    positives: torch.Tensor | None = None
    negative_tokens: dict[str, torch.Tensor] | None = None


def train_loop(
    model: CLIPModel,
    next_batch: Callable[[int], Batch],
    *,
    steps: int,
    lr: float = 1e-3,
    warmup: int | None = None,
    weight_decay: float = 0.1,
    train_only: Sequence[str] | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    eval_every: int = 100,
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
) -> dict[str, list[float]]:
    """The one training loop: AdamW, warm-up then cosine, clamped temperature, history.

    :func:`fit` (a fixed, pre-encoded dataset) and
    :func:`cmalign.toy.negclip.finetune_with_negatives` (fresh scenes every
    step) differ only in how they make a step's :class:`Batch`.

    Parameters
    ----------
    model : transformers.CLIPModel
        Trained in place on the device it is on; left in eval mode.
    next_batch : callable
        ``next_batch(step) -> Batch`` for step = 1 .. ``steps``.
    steps, lr, weight_decay
        AdamW (betas 0.9/0.98, eps 1e-6 as in CLIP) with decay on matrices only
        (:func:`~cmalign.optim.param_groups`).
    warmup : int, optional
        Linear warm-up steps (default 5 % of ``steps``), then cosine decay to 0.
    train_only : sequence of str, optional
        Train only parameters whose name contains one of these.
    evaluate : callable, optional
        ``evaluate() -> metrics`` at step 0, every ``eval_every`` steps and at the
        end; its ``text_to_image_R@1`` / ``image_to_text_R@1`` go into the history.
    callback : callable, optional
        ``callback(record)`` after every step (step, loss, scale, lr, and the
        last evaluation's text->image R@1 on evaluation steps).

    Returns
    -------
    dict of lists
        ``step``, ``loss``, ``scale`` (s = e^t) and ``lr`` per step; ``eval_step``,
        ``eval_text_to_image_R@1``, ``eval_image_to_text_R@1`` per evaluation;
        ``seconds`` (one entry).
    """
    device = next(model.parameters()).device
    model.train()
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}

    def run_eval(step: int) -> None:
        metrics = evaluate()
        history["eval_step"].append(step)
        for key in ("text_to_image_R@1", "image_to_text_R@1"):
            history[f"eval_{key}"].append(metrics[key])

    def to_device(tokens):
        return None if tokens is None else {k: v.to(device) for k, v in tokens.items()}

    with freeze_all_but(model, train_only):
        optimizer = torch.optim.AdamW(
            param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.98), eps=1e-6
        )
        warmup = max(1, int(0.05 * steps)) if warmup is None else warmup
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(steps, warmup)
        )
        if evaluate is not None:
            run_eval(0)
        start = time.perf_counter()
        off = {} if progress else {"disable": True}  # TQDM_DISABLE=1 also hides it
        bar = tqdm(range(1, steps + 1), desc="training", **off)
        for step in bar:
            batch = next_batch(step)
            lr_now = optimizer.param_groups[0]["lr"]
            loss = train_step(
                model,
                optimizer,
                batch.pixel_values.to(device),
                to_device(batch.tokens),
                None if batch.positives is None else batch.positives.to(device),
                to_device(batch.negative_tokens),
            )
            scheduler.step()
            record = {
                "step": step,
                "loss": loss,
                "scale": model.logit_scale.exp().item(),
                "lr": lr_now,
            }
            for key, value in record.items():
                history[key].append(value)
            if evaluate is not None and (step % eval_every == 0 or step == steps):
                run_eval(step)
                record["eval_text_to_image_R@1"] = history["eval_text_to_image_R@1"][-1]
            bar.set_postfix(loss=f"{loss:.3f}", scale=f"{record['scale']:.1f}")
            if callback is not None:
                callback(record)
        history["seconds"] = [time.perf_counter() - start]
    model.eval()
    return history


def fit(
    model: CLIPModel,
    processor: CLIPProcessor,
    dataset: PairDataset,
    *,
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
    negatives=None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` in place with the symmetric CLIP loss on a fixed dataset.

    Every image and caption is preprocessed once (:func:`encode_dataset`);
    each step samples ``batch_size`` captions with their images and hands the
    batch to :func:`train_loop`.

    Parameters
    ----------
    model, processor
        A ``CLIPModel`` (toy or real) and its processor.
    dataset : PairDataset
        A :class:`~cmalign.toy.world.ToyDataset` or :class:`~cmalign.data.CaptionSet`
        (:class:`~cmalign.pairs.PairDataset`).
    steps, batch_size, lr, warmup, weight_decay, train_only, eval_every, progress, callback
        As in :func:`train_loop`.
    eval_dataset : PairDataset, optional
        Scored every ``eval_every`` steps with its ``relevance()``; the recalls
        go into the history.
    seed : int
        Seeds the batch sampler and torch's global generator (this function
        calls ``torch.manual_seed(seed)``: the only global state it touches).
    multi_positive : bool
        Count every caption that fits an image in the batch as a positive
        (``clip_loss(..., positives=...)``); False uses plain ``arange(n)``.
    negatives : optional
        Hard negatives of ``dataset``'s captions (a
        :class:`~cmalign.toy.negatives.NegativeSet`: ``texts``,
        ``sample(text_idx, generator)``, ``relevance_between``). Each step adds
        one per sampled caption as an extra image->text negative.

    Returns
    -------
    dict of lists
        The history of :func:`train_loop`.
    """
    check_pair_dataset(dataset)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.to(torch.device(device)).train()
    context_length = model.config.text_config.max_position_embeddings
    pixel_values, tokens = encode_dataset(
        processor, dataset, context_length=context_length
    )
    if negatives is not None:
        negative_tokens = tokenize_texts(
            processor, negatives.texts, context_length=context_length
        )
    text_to_image = torch.as_tensor(dataset.text_to_image)
    evaluation = (
        _eval_data(processor, eval_dataset, context_length)
        if eval_dataset is not None
        else None
    )

    def next_batch(step: int) -> Batch:
        text_idx = torch.randint(len(text_to_image), (batch_size,), generator=generator)
        image_idx = text_to_image[text_idx]
        positives = (
            batch_positives(dataset, text_idx, image_idx) if multi_positive else None
        )
        hard = None
        if negatives is not None:
            negative_idx = negatives.sample(text_idx, generator)
            hard = {k: v[negative_idx] for k, v in negative_tokens.items()}
            if positives is not None:
                fits = negatives.relevance_between(
                    negative_idx.tolist(), image_idx.tolist()
                )
                positives = torch.cat([positives, fits.T], dim=1)
        return Batch(
            pixel_values[image_idx],
            {k: v[text_idx] for k, v in tokens.items()},
            positives,
            hard,
        )

    return train_loop(
        model,
        next_batch,
        steps=steps,
        lr=lr,
        warmup=warmup,
        weight_decay=weight_decay,
        train_only=train_only,
        evaluate=None
        if evaluation is None
        else lambda: retrieval_on_encoded(model, *evaluation),
        eval_every=eval_every,
        progress=progress,
        callback=callback,
    )

import math

import pytest
import torch
import torch.nn.functional as F

try:  # transformers 5.x
    from transformers.models.clip.modeling_clip import image_text_contrastive_loss
except ImportError:  # transformers 4.x names the same function clip_loss
    from transformers.models.clip.modeling_clip import (
        clip_loss as image_text_contrastive_loss,
    )

from cmalign.losses import (
    LOGIT_SCALE_MAX,
    clamp_logit_scale_,
    clip_loss,
    info_nce,
    siglip_loss,
)
from tests.conftest import random_unit


def transformers_loss(image_emb, text_emb, scale):
    """transformers' own CLIP loss, fed logits_per_text exactly as CLIPModel does."""
    return image_text_contrastive_loss(text_emb @ image_emb.T * scale)


@pytest.mark.parametrize("n", [1, 2, 7, 64])
@pytest.mark.parametrize("scale", [1.0, 1 / 0.07, 100.0])
def test_clip_loss_matches_transformers_forward_and_backward(n, scale, generator):
    image = random_unit(n, 16, generator).requires_grad_()
    text = random_unit(n, 16, generator).requires_grad_()
    ours = clip_loss(image, text, torch.tensor(scale))
    (grad_image, grad_text) = torch.autograd.grad(ours, (image, text))
    ref = transformers_loss(image, text, scale)
    (ref_image, ref_text) = torch.autograd.grad(ref, (image, text))
    assert torch.allclose(ours, ref, atol=1e-6)
    assert torch.allclose(grad_image, ref_image, atol=1e-6)
    assert torch.allclose(grad_text, ref_text, atol=1e-6)


def test_clip_loss_equals_clipmodel_forward(toy_bundle):
    from cmalign.toy import world as toyworld

    data = toyworld.make_dataset(6, seed=3)
    inputs = toy_bundle.processor(
        text=data.captions, images=data.images, return_tensors="pt", padding=True
    )
    with torch.no_grad():
        out = toy_bundle.model(**inputs, return_loss=True)
    ours = clip_loss(
        out.image_embeds, out.text_embeds, toy_bundle.model.logit_scale.exp()
    )
    assert torch.allclose(ours, out.loss, atol=1e-6)


def test_clip_loss_hand_worked_2x2():
    # identical orthogonal pairs, scale 1: logits = I, each row's loss is
    # -log(e / (e + 1)) = log(1 + e^-1) in both directions.
    eye = torch.eye(2, requires_grad=True)
    loss = clip_loss(eye, torch.eye(2), 1.0)
    assert math.isclose(loss.item(), math.log(1 + math.exp(-1)), rel_tol=1e-6)
    # d loss / d logits = (softmax - onehot) / n per direction; by hand for row 0:
    p = math.exp(1) / (math.exp(1) + 1)
    (grad,) = torch.autograd.grad(loss, eye)
    # image 0 feeds row 0 of logits (image->text) and column 0 (text->image)
    expected = torch.tensor([[p - 1, 1 - p], [1 - p, p - 1]]) / 2
    assert torch.allclose(grad, expected, atol=1e-6)


def test_info_nce_is_one_direction_and_clip_loss_their_mean(generator):
    image, text = random_unit(5, 8, generator), random_unit(5, 8, generator)
    manual = -F.log_softmax(10 * image @ text.T, dim=1).diagonal().mean()
    assert torch.allclose(info_nce(image, text, 10.0), manual, atol=1e-6)
    both = (info_nce(image, text, 10.0) + info_nce(text, image, 10.0)) / 2
    assert torch.allclose(clip_loss(image, text, 10.0), both, atol=1e-6)


def test_positives_identity_equals_plain_and_soft_targets_by_hand(generator):
    image, text = random_unit(4, 8, generator), random_unit(4, 8, generator)
    plain = clip_loss(image, text, 5.0)
    assert torch.allclose(
        clip_loss(image, text, 5.0, positives=torch.eye(4, dtype=torch.bool)),
        plain,
        atol=1e-6,
    )
    positives = torch.eye(4, dtype=torch.bool)
    positives[0, 1] = positives[1, 0] = True
    logits = 5.0 * image @ text.T
    targets = positives.float() / positives.float().sum(1, keepdim=True)
    rows = -(targets * F.log_softmax(logits, 1)).sum(1).mean()
    cols = -(targets.T * F.log_softmax(logits.T, 1)).sum(1).mean()
    assert torch.allclose(
        clip_loss(image, text, 5.0, positives=positives), (rows + cols) / 2, atol=1e-6
    )


@pytest.mark.parametrize("n", [1, 3, 8])
def test_siglip_loss_matches_brute_force(n, generator):
    image = random_unit(n, 8, generator).requires_grad_()
    text = random_unit(n, 8, generator)
    ours = siglip_loss(image, text, 10.0, -10.0)
    brute = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            brute = brute - F.logsigmoid(z * (10.0 * image[i] @ text[j] - 10.0))
    brute = brute / n
    assert torch.allclose(ours, brute, atol=1e-5)
    g1 = torch.autograd.grad(ours, image)[0]
    g2 = torch.autograd.grad(brute, image)[0]
    assert torch.allclose(g1, g2, atol=1e-6)


@pytest.mark.parametrize("loss", [clip_loss, info_nce])
def test_losses_refuse_bad_features(loss, generator):
    good = random_unit(3, 4, generator)
    with pytest.raises(ValueError, match="not L2-normalised"):
        loss(good * 2, good, 1.0)
    nan = good.clone()
    nan[1, 0] = float("nan")
    with pytest.raises(ValueError, match="row 1 contains NaN"):
        loss(good, nan, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        loss(good, good[:2], 1.0)
    with pytest.raises(ValueError, match="zero vector"):
        loss(torch.zeros(3, 4), good, 1.0)
    with pytest.raises(ValueError, match="logit_scale"):
        loss(good, good, float("inf"))


def test_clamp_logit_scale():
    param = torch.nn.Parameter(torch.tensor(10.0))
    clamp_logit_scale_(param)
    assert param.item() == pytest.approx(LOGIT_SCALE_MAX)
    assert param.exp().item() == pytest.approx(100.0)
    param.data.fill_(-1.0)
    assert clamp_logit_scale_(param).item() == 0.0


def negclip_reference(image, text, negatives, scale):
    """NegCLIP by hand: negatives are extra columns of the image->text softmax only."""
    n = len(image)
    rows = torch.cat([image @ text.T, image @ negatives.T], dim=1) * scale  # (n, n+m)
    cols = (text @ image.T) * scale  # (n, n)
    image_to_text = -torch.stack([rows[i].log_softmax(0)[i] for i in range(n)]).mean()
    text_to_image = -torch.stack([cols[i].log_softmax(0)[i] for i in range(n)]).mean()
    return (image_to_text + text_to_image) / 2


@pytest.mark.parametrize("n,m", [(1, 1), (4, 2), (8, 8), (5, 11)])
def test_hard_negatives_forward_and_backward_match_hand_version(n, m, generator):
    image = random_unit(n, 8, generator).requires_grad_()
    text = random_unit(n, 8, generator).requires_grad_()
    negatives = random_unit(m, 8, generator).requires_grad_()
    ours = clip_loss(image, text, 20.0, hard_negatives=negatives)
    ref = negclip_reference(image, text, negatives, 20.0)
    assert torch.allclose(ours, ref, atol=1e-6)
    for g_ours, g_ref in zip(
        torch.autograd.grad(ours, (image, text, negatives)),
        torch.autograd.grad(ref, (image, text, negatives)),
    ):
        assert torch.allclose(g_ours, g_ref, atol=1e-6)
    # a negative identical to every true caption caps each image->text
    # probability at 1/2: that direction's loss is at least log 2
    twins = clip_loss(image, text, 20.0, hard_negatives=text.detach())
    t2i_only = clip_loss(image, text, 20.0) - info_nce(image, text, 20.0) / 2
    assert twins - t2i_only >= math.log(2) / 2 - 1e-6


def test_hard_negatives_with_positives(generator):
    image, text = random_unit(3, 6, generator), random_unit(3, 6, generator)
    negatives = random_unit(2, 6, generator)
    plain = clip_loss(image, text, 10.0, hard_negatives=negatives)
    eye = torch.eye(3, dtype=torch.bool)
    assert torch.allclose(
        clip_loss(image, text, 10.0, positives=eye, hard_negatives=negatives), plain
    )
    # (n, n + m): negative 1 truly describes image 2, so it becomes a positive there
    wide = torch.cat([eye, torch.tensor([[False, False]] * 2 + [[False, True]])], 1)
    rows = torch.cat([image @ text.T, image @ negatives.T], 1) * 10.0
    targets = wide.float() / wide.float().sum(1, keepdim=True)
    i2t = -(targets * rows.log_softmax(1)).sum(1).mean()
    t2i = F.cross_entropy((text @ image.T) * 10.0, torch.arange(3))
    assert torch.allclose(
        clip_loss(image, text, 10.0, positives=wide, hard_negatives=negatives),
        (i2t + t2i) / 2,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="hard_negatives must have shape"):
        clip_loss(image, text, 10.0, hard_negatives=random_unit(2, 5, generator))
    with pytest.raises(ValueError, match="not L2-normalised"):
        clip_loss(image, text, 10.0, hard_negatives=negatives * 2)
    with pytest.raises(ValueError, match=r"\(3, 3\) or \(3, 5\)"):
        clip_loss(image, text, 10.0, positives=eye[:, :2], hard_negatives=negatives)

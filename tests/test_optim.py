"""param_groups: every trainable parameter in exactly one group; the default
grouping and open_clip's (``decay_embeddings=True``), on the toy CLIP's names."""

import pytest

from cmalign.optim import freeze_all_but, param_groups


def open_clip_exclude(name, param):
    # transcribed from open_clip_train/main.py (open_clip 2.x/3.x):
    # exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n
    #                        or 'logit_scale' in n
    return (
        param.ndim < 2
        or "bn" in name
        or "ln" in name
        or "bias" in name
        or "logit_scale" in name
    )


def _names(model, group):
    ids = {id(p) for p in group["params"]}
    return {n for n, p in model.named_parameters() if id(p) in ids}


@pytest.mark.parametrize("decay_embeddings", [False, True])
def test_every_trainable_parameter_is_in_exactly_one_group(
    toy_bundle, decay_embeddings
):
    model = toy_bundle.model
    decay, plain = param_groups(model, 0.1, decay_embeddings=decay_embeddings)
    assert decay["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    a, b = _names(model, decay), _names(model, plain)
    assert not a & b
    assert a | b == {n for n, _ in model.named_parameters()}


def test_open_clip_grouping_decays_the_2d_embeddings(toy_bundle):
    model = toy_bundle.model
    decay, plain = param_groups(model, 0.1, decay_embeddings=True)
    expected = {n for n, p in model.named_parameters() if open_clip_exclude(n, p)}
    assert _names(model, plain) == expected
    decayed = _names(model, decay)
    for name in (
        "text_model.embeddings.token_embedding.weight",
        "text_model.embeddings.position_embedding.weight",
        "vision_model.embeddings.patch_embedding.weight",
    ):
        assert name in decayed, name
    assert "vision_model.embeddings.class_embedding" not in decayed  # 1-D
    assert "logit_scale" not in decayed


def test_default_grouping_keeps_embeddings_undecayed(toy_bundle):
    model = toy_bundle.model
    decay, plain = param_groups(model, 0.1)
    undecayed = _names(model, plain)
    embeddings = {n for n, _ in model.named_parameters() if "embedding" in n}
    assert embeddings and embeddings <= undecayed
    assert "logit_scale" in undecayed
    assert "visual_projection.weight" in _names(model, decay)
    # the two rules differ exactly on the >= 2-D embeddings
    open_clip_plain = _names(model, param_groups(model, 0.1, decay_embeddings=True)[1])
    assert undecayed - open_clip_plain == {
        n for n, p in model.named_parameters() if "embedding" in n and p.ndim >= 2
    }


def test_frozen_parameters_are_left_out(toy_bundle):
    model = toy_bundle.model
    with freeze_all_but(model, ["projection"]):
        decay, plain = param_groups(model, 0.1)
        assert _names(model, decay) == {
            "visual_projection.weight",
            "text_projection.weight",
        }
        assert not _names(model, plain)

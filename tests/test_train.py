import math

import torch

from cmalign.features import image_features, text_features
from cmalign.losses import LOGIT_SCALE_MAX, clip_loss
from cmalign.toy import world as toyworld
from cmalign.toy.model import build_toy_clip
from cmalign.train import encode_dataset, fit


def _loss_on(model, processor, data):
    pixels, tokens = encode_dataset(processor, data)
    with torch.no_grad():
        model.eval()
        image, text = image_features(model, pixels), text_features(model, **tokens)
        return clip_loss(image, text, model.logit_scale.exp()).item()


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    model, processor = build_toy_clip(seed=0, width=32, vision_layers=1, text_layers=1)
    data = toyworld.make_dataset(16, seed=0)
    before = _loss_on(model, processor, data)
    history = fit(
        model, processor, data, steps=30, batch_size=16, lr=3e-3, seed=0, progress=False
    )
    after = _loss_on(model, processor, data)
    assert after < before - 0.3, (before, after)
    assert len(history["loss"]) == 30 and history["loss"][-1] < history["loss"][0]


def test_fit_is_deterministic_and_records_evaluations():
    runs = []
    for _ in range(2):
        model, processor = build_toy_clip(
            seed=1, width=32, vision_layers=1, text_layers=1
        )
        data = toyworld.make_dataset(32, seed=1)
        held = toyworld.make_dataset(20, seed=2, split="test")
        runs.append(
            fit(
                model,
                processor,
                data,
                steps=6,
                batch_size=8,
                seed=3,
                eval_dataset=held,
                eval_every=3,
                progress=False,
            )
        )
    assert runs[0]["loss"] == runs[1]["loss"]
    assert runs[0]["eval_step"] == [0, 3, 6]
    assert all(0 <= r <= 1 for r in runs[0]["eval_text_to_image_R@1"])


def test_temperature_clamp_holds():
    # Start above the cap: without the clamp one small AdamW step would leave the
    # scale near 200; fit must clamp it to 100 after every step.
    model, processor = build_toy_clip(seed=0, width=32, vision_layers=1, text_layers=1)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(200.0))
    history = fit(
        model,
        processor,
        toyworld.make_dataset(16, seed=0),
        steps=5,
        batch_size=16,
        lr=1e-3,
        seed=0,
        progress=False,
    )
    assert math.isclose(history["scale"][0], 100.0, rel_tol=1e-5)
    assert max(history["scale"]) <= 100.0 + 1e-4
    assert model.logit_scale.item() <= LOGIT_SCALE_MAX + 1e-6


def test_fine_tune_only_projections_on_a_caption_folder(toy_bundle, photos):
    """fit works on real image-caption folders (several captions per image)."""
    import copy

    model = copy.deepcopy(toy_bundle.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = fit(
        model,
        toy_bundle.processor,
        photos,
        steps=3,
        batch_size=8,
        lr=1e-3,
        eval_dataset=photos,
        eval_every=3,
        seed=0,
        progress=False,
        train_only=["projection"],
    )
    changed = {
        k for k, v in model.state_dict().items() if not torch.equal(v, before[k])
    }
    assert changed == {"visual_projection.weight", "text_projection.weight"}
    assert len(history["eval_text_to_image_R@1"]) == 2
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again

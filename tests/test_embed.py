import numpy as np
import pytest
import torch
from PIL import Image

import cmalign
from cmalign.toy import world as toyworld


@pytest.fixture(scope="module")
def world():
    return toyworld.make_dataset(12, seed=5)


def test_shapes_and_norms(toy_bundle, world):
    image_emb = cmalign.embed_images(
        toy_bundle, world.images, batch_size=5, progress=False
    )
    text_emb = cmalign.embed_texts(
        toy_bundle, world.captions, batch_size=5, progress=False
    )
    dim = toy_bundle.embed_dim
    assert image_emb.shape == (12, dim) and text_emb.shape == (12, dim)
    assert image_emb.dtype == torch.float32
    assert torch.allclose(image_emb.norm(dim=1), torch.ones(12), atol=1e-5)
    assert torch.allclose(text_emb.norm(dim=1), torch.ones(12), atol=1e-5)


def test_batch_size_does_not_change_results(toy_bundle, world):
    one = cmalign.embed_images(toy_bundle, world.images, batch_size=1, progress=False)
    all_ = cmalign.embed_images(toy_bundle, world.images, batch_size=32, progress=False)
    assert torch.allclose(one, all_, atol=1e-5)
    t1 = cmalign.embed_texts(toy_bundle, world.captions, batch_size=1, progress=False)
    t2 = cmalign.embed_texts(toy_bundle, world.captions, batch_size=64, progress=False)
    assert torch.allclose(t1, t2, atol=1e-5)


def test_paths_pil_and_arrays_agree(toy_bundle, world, tmp_path):
    path = tmp_path / "x.png"
    world.images[0].save(path)
    array = np.asarray(world.images[0])
    emb = cmalign.embed_images(
        toy_bundle, [path, world.images[0], array], progress=False
    )
    assert torch.allclose(emb[0], emb[1], atol=1e-6) and torch.allclose(
        emb[0], emb[2], atol=1e-6
    )


def test_rgba_converted_with_warning(toy_bundle):
    rgba = Image.new("RGBA", (40, 40), (255, 0, 0, 255))
    with pytest.warns(UserWarning, match="RGBA"):
        emb = cmalign.embed_images(toy_bundle, [rgba], progress=False)
    rgb = cmalign.embed_images(
        toy_bundle, [Image.new("RGB", (40, 40), (255, 0, 0))], progress=False
    )
    assert torch.allclose(emb, rgb, atol=1e-6)


def test_bad_image_input_names_the_item(toy_bundle, world, tmp_path):
    images = list(world.images[:3]) + [tmp_path / "missing.png"]
    with pytest.raises(FileNotFoundError, match=r"image 3 \(.*missing.png"):
        cmalign.embed_images(toy_bundle, images, batch_size=2, progress=False)
    with pytest.raises(ValueError, match="images is empty"):
        cmalign.embed_images(toy_bundle, [], progress=False)
    with pytest.raises(TypeError, match="sequence"):
        cmalign.embed_images(toy_bundle, "cat.jpg", progress=False)


def test_bad_text_input(toy_bundle):
    with pytest.raises(ValueError, match="text 1 is empty"):
        cmalign.embed_texts(toy_bundle, ["a red circle", "  "], progress=False)
    with pytest.raises(TypeError, match="text 0 is int"):
        cmalign.embed_texts(toy_bundle, [3], progress=False)
    with pytest.raises(TypeError, match="list of strings"):
        cmalign.embed_texts(toy_bundle, "a red circle", progress=False)
    with pytest.raises(ValueError, match="texts is empty"):
        cmalign.embed_texts(toy_bundle, [], progress=False)


def test_truncation_warns_with_count(toy_bundle):
    long = " ".join(["a red circle"] * 20)
    with pytest.warns(UserWarning, match="2 of 3 captions exceed the 32-token context"):
        emb = cmalign.embed_texts(toy_bundle, [long, "a cat", long], progress=False)
    assert torch.isfinite(emb).all()


def test_autocast_close_to_fp32(toy_bundle, world):
    fp32 = cmalign.embed_images(toy_bundle, world.images, progress=False)
    bf16 = cmalign.embed_images(toy_bundle, world.images, progress=False, autocast=True)
    assert (fp32 * bf16).sum(1).min() > 0.99


def test_class_embeddings_ensemble(toy_bundle):
    emb = cmalign.class_embeddings(
        toy_bundle, ["red", "blue"], ["a {} object", "a {} shape"]
    )
    single = cmalign.embed_texts(
        toy_bundle, ["a red object", "a red shape"], progress=False
    )
    expected = torch.nn.functional.normalize(single.mean(0), dim=-1)
    assert torch.allclose(emb[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="'{}'"):
        cmalign.class_embeddings(toy_bundle, ["red"], ["no slot"])

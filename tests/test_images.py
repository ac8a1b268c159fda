import numpy as np
import pytest
from PIL import Image

from cmalign.images import load_rgb_images


@pytest.fixture
def rgb_file(tmp_path):
    path = tmp_path / "ok.png"
    Image.new("RGB", (8, 6), (10, 20, 30)).save(path)
    return path


def test_paths_pil_and_arrays_give_the_same_rgb(rgb_file):
    array = np.asarray(Image.open(rgb_file))
    out = load_rgb_images([rgb_file, str(rgb_file), Image.open(rgb_file), array])
    assert all(im.mode == "RGB" and im.size == (8, 6) for im in out)
    assert all(np.array_equal(np.asarray(im), array) for im in out)


def test_missing_file_and_directory_are_named(tmp_path, rgb_file):
    with pytest.raises(
        FileNotFoundError, match=r"image 1 \('.*nope.jpg'\): file not found"
    ):
        load_rgb_images([rgb_file, tmp_path / "nope.jpg"])
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_rgb_images([tmp_path])
    with pytest.raises(IsADirectoryError, match="image 7"):
        load_rgb_images([tmp_path], start=7)


def test_corrupt_and_truncated_files(tmp_path):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image")
    with pytest.raises(ValueError, match="garbage.jpg.*not a readable image"):
        load_rgb_images([garbage])
    full = tmp_path / "full.jpg"
    Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    ).save(full)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[:400])
    with pytest.raises(ValueError, match="cut.jpg.*(corrupt|truncated)"):
        load_rgb_images([cut])


@pytest.mark.parametrize("mode", ["CMYK", "RGBA", "P", "L", "I;16", "LA"])
def test_odd_modes_are_converted_with_a_warning(mode, tmp_path):
    image = (
        Image.new("RGB", (4, 4), (200, 100, 50)).convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.full((4, 4), 65535, np.uint16))
    )
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    image.save(path)
    with pytest.warns(UserWarning, match="converted images to RGB"):
        (out,) = load_rgb_images([path])
    assert out.mode == "RGB"
    if mode == "I;16":  # full-scale 16-bit white must become white, not clipped noise
        assert np.asarray(out).min() == 255


def test_transparent_pixels_become_white():
    rgba = np.zeros((2, 2, 4), np.uint8)  # fully transparent black
    with pytest.warns(UserWarning):
        (out,) = load_rgb_images([rgba])
    assert np.asarray(out).min() == 255


def test_huge_images_are_refused(tmp_path, rgb_file):
    with pytest.raises(ValueError, match="exceeds the limit of 10"):
        load_rgb_images([rgb_file], max_pixels=10)
    with pytest.raises(ValueError, match="exceeds"):
        load_rgb_images([Image.new("RGB", (5, 5))], max_pixels=10)


def test_bad_arrays_and_types():
    with pytest.raises(TypeError, match="image 0: numpy arrays must be uint8"):
        load_rgb_images([np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="shape"):
        load_rgb_images([np.zeros((4, 4, 5), np.uint8)])
    with pytest.raises(TypeError, match="image 0: expected a path"):
        load_rgb_images([42])

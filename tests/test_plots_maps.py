"""embedding_map: named axes and a legend outside the axes (lesson 05's failure map)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cmalign.plots import embedding_map, image_grid  # noqa: E402


def test_axes_are_named_and_the_legend_sits_right_of_the_axes():
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(12, 2))
    fig = embedding_map(
        coords,
        ["image"] * 8 + ["text"] * 4,
        labels=["a"] * 4 + ["b"] * 4 + ["query"] * 4,
        xlabel="PC 1 (30 % of variance)",
        ylabel="PC 2 (20 % of variance)",
        legend_outside=True,
    )
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("PC 1") and ax.get_ylabel().startswith("PC 2")
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # nothing hidden under it
    plt.close(fig)


def test_default_map_keeps_its_legend_inside():
    fig = embedding_map(np.zeros((2, 2)), ["image", "text"])
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x1 <= ax.get_window_extent().x1 + 1
    assert ax.get_xlabel() == ""
    plt.close(fig)


def test_grid_titles_keep_their_own_line_breaks():
    """A title's "\n\n" (two captions, lesson 08) stays a break; long lines still wrap."""
    from PIL import Image

    title = "shipped: a small red circle on the left\n\nNegCLIP: a big blue square"
    fig = image_grid([Image.new("RGB", (8, 8))], [title])
    shown = fig.axes[0].get_title()
    assert shown.split("\n\n") == ["shipped: a small red\ncircle on the left", "NegCLIP: a big blue\nsquare"]
    plt.close(fig)

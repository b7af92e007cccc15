"""Pictures a run leaves: grids of images (samples, reconstructions) and curves of metrics, as PNG files
written atomically."""

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from vaecnn.distributed import is_writer
from vaecnn.files import atomic_write


def image_grid(images_NxHxW: np.ndarray, columns: int, padding: int = 2) -> np.ndarray:
    """Tiles N grayscale images (values in [0, 1]) into one uint8 picture, `columns` per row."""
    images = np.clip(np.asarray(images_NxHxW, np.float32), 0.0, 1.0)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    count, height, width = images.shape
    rows = -(-count // columns)
    grid = np.ones((rows * (height + padding) + padding, columns * (width + padding) + padding), np.float32)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return (grid * 255).round().astype(np.uint8)


def save_image_grid(path: str, images_NxHxW: np.ndarray, columns: int, scale: int = 2) -> np.ndarray:
    """Saves image_grid(...) as a PNG, enlarged `scale` times (nearest neighbour) for viewing, and returns
    the grid at its own size."""
    grid = image_grid(images_NxHxW, columns)
    if not is_writer():
        return grid
    picture = Image.fromarray(grid)
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    png = io.BytesIO()
    picture.save(png, format="PNG")
    atomic_write(path, png.getvalue())
    return grid


def plot_curves(path: str, history: Sequence[Mapping[str, Any]], keys: Sequence[str], ylabel: str,
                title: str = "") -> None:
    """Line plot of metrics.jsonl columns against epoch (e.g. train and test negative ELBO)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
    epochs = [line["epoch"] for line in history]
    for key in keys:
        axes.plot(epochs, [line.get(key, np.nan) for line in history], marker="o", markersize=3, label=key)
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    save_figure(path, figure)


def save_figure(path: str, figure) -> None:
    """Saves a matplotlib figure as a PNG atomically (written beside, then renamed) and closes it."""
    import matplotlib.pyplot as plt

    if is_writer():
        png = io.BytesIO()
        figure.savefig(png, format="png")
        atomic_write(path, png.getvalue())
    plt.close(figure)

"""What runs leave behind: metrics.jsonl, results.json, image grids and plots.

Files are replaced atomically (written beside, then renamed), so an interrupted run never leaves a
half-written results.json or picture.
"""

import contextlib
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging
from PIL import Image

from vaecnn import disk
from vaecnn.errors import ConfigError, DataError


def check_workdir(path: str) -> None:
    """Raises ConfigError unless `path` is a writable folder or could be created as one, without
    creating anything: its nearest existing ancestor must be a folder this process may write in.

    Why before anything runs: otherwise a typo'd or read-only --workdir fails only after the data has
    loaded (and, for a long run, after the first epoch), with an OS traceback.
    """
    if not path:
        raise ConfigError("--workdir is empty; name the folder for the run's outputs")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"--workdir={path} cannot be created: {existing} is a file, not a folder; "
                          "choose another --workdir")
    # os.access reports a read-only mount (EROFS) even to root, whose permission bits are not checked.
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--workdir={path} cannot be written: {existing} is read-only for this process; "
                          "choose a --workdir on a writable disk")


def make_workdir(path: str) -> None:
    """Creates the folder `path` (and its parents) for a run's outputs, or raises ConfigError."""
    check_workdir(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--workdir={path} cannot be created ({error.strerror}); choose another --workdir") \
            from error


def is_writer() -> bool:
    """Whether this process writes a run's files: process 0 of a multi-process run (vaecnn.distributed),
    always in one process. The others compute the same numbers and write nothing."""
    import jax

    return jax.process_index() == 0


def _atomic_write(path: str, data: bytes) -> None:
    """Writes beside, then renames: `path` is either its old or its new content. A write that fails leaves
    no temporary file; for lack of space it is DiskFull's one line."""
    if not is_writer():
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if error.errno in disk.OUT_OF_SPACE:
            raise disk.out_of_space(path) from None
        raise


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic) or (hasattr(value, "shape") and getattr(value, "shape") == ()):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them visible instead of failing the write
    return value


def write_json(path: str, obj: Mapping[str, Any]) -> None:
    _atomic_write(path, (json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n").encode())


def write_text(path: str, text: str) -> None:
    _atomic_write(path, text.encode())


def read_json(path: str) -> dict[str, Any]:
    """A JSON object a run wrote; FileNotFoundError when there is none, DataError (one line) when it is
    damaged (cut, garbled, not an object)."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is damaged or unreadable ({type(error).__name__}: {str(error)[:80]}); restore it, "
                        "or remove it and rerun the command that writes it") from None
    if not isinstance(value, dict):
        raise DataError(f"{path} is damaged: it holds no JSON object; restore it, or remove it and rerun the command "
                        "that writes it")
    return value


class MetricsLog:
    """metrics.jsonl: one JSON object per epoch, appended as training goes."""

    def __init__(self, path: str):
        self.path = path

    def read(self) -> list[dict[str, Any]]:
        """The complete lines. A last line cut mid-write (a crash, a full disk) is dropped with a warning:
        the checkpoint decides where a run stands, and a resumed run rewrites that epoch's line."""
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            lines = [line for line in f if line.strip()]
        parsed = []
        for number, line in enumerate(lines, 1):
            try:
                parsed.append(json.loads(line))
            except ValueError:
                if number < len(lines) or line.endswith("\n"):
                    raise DataError(f"{self.path}: line {number} is not JSON; it was edited or damaged. Remove "
                                    "that line (the checkpoints decide where the run stands) and rerun") from None
                logging.warning("%s: its last line was cut mid-write; dropped (the checkpoint decides where the "
                                "run stands)", self.path)
        return parsed

    def truncate_after(self, epoch: int) -> list[dict[str, Any]]:
        """Keeps the lines of epochs <= `epoch` (those a resumed run's checkpoint covers): a run
        stopped between a metrics line and its checkpoint rewrites that epoch rather than repeat it."""
        kept = [line for line in self.read() if line["epoch"] <= epoch]
        _atomic_write(self.path, "".join(json.dumps(_jsonable(line)) + "\n" for line in kept).encode())
        return kept

    def append(self, line: Mapping[str, Any]) -> None:
        """One more line; a write that fails takes back what it wrote of it (so no cut line stays)."""
        if not is_writer():
            return
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(_jsonable(line)) + "\n")
        except OSError as error:
            with contextlib.suppress(OSError), open(self.path, "r+") as f:
                f.truncate(size)
            if error.errno in disk.OUT_OF_SPACE:
                raise disk.out_of_space(self.path, f"epoch {line.get('epoch')}'s line of {self.path}") from None
            raise


def format_metrics(line: Mapping[str, Any], skip: Iterable[str] = ("epoch",)) -> str:
    parts = []
    for key, value in line.items():
        if key in skip or key.endswith("/count"):
            continue
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return "  ".join(parts)


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
    _atomic_write(path, png.getvalue())
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
        _atomic_write(path, png.getvalue())
    plt.close(figure)


def hardware() -> dict[str, Any]:
    """Where a run ran, for results.json and the results tables (docs/results.md)."""
    import platform

    import jax

    devices = jax.devices()
    return {"backend": jax.default_backend(), "device_kind": devices[0].device_kind,
            "device_count": len(devices), "host_cpus": os.cpu_count(), "cpu_model": _cpu_model(),
            "processor": platform.processor() or platform.machine(), "jax": jax.__version__}


def _cpu_model() -> str:
    """The CPU's name and its widest vector extension: machines of the same name differ (AVX2, AVX-512)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return "unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name} ({widest}{', AMX' if 'amx_tile' in flags else ''})"

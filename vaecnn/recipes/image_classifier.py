"""The image-classification experiment of TD-2, Exercise 1: a small CNN or a dense net on MNIST.

    config = ImageClassifierConfig(workdir="runs/cnn", data_dir="../shared/datasets", model="cnn")
    results = lifecycle.run(RECIPE, config)     # also written to workdir/results.json
    # model "both": each model a sub-run in workdir/cnn and workdir/dense, + workdir/comparison.md

Training is the lifecycle's (vaecnn.lifecycle) with a ClassifierTask (cross-entropy, accuracy). The
reported numbers are those of the last epoch: the test set is never used to pick an epoch.
"""

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from absl import logging

from vaecnn import arith, files, lifecycle, plots, sharding
from vaecnn import config as vconfig
from vaecnn.config import option
from vaecnn.classification import ClassifierTask
from vaecnn.data.batching import ArrayBatcher
from vaecnn.data.images import DATASETS, ImageSplit, data_dir_option, dataset_option, load_image_dataset
from vaecnn.errors import ConfigError
from vaecnn.models.image_cnn import DenseNet, SmallCNN
from vaecnn.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from vaecnn.train import TrainConfig

MODELS = ("cnn", "dense")
BOTH = "both"  # config.model: train every model of MODELS and compare them
SUMMARY_FILE = "model_summary.txt"


@dataclasses.dataclass(frozen=True)
class ImageClassifierConfig:
    """Everything an image-classifier run depends on. Defaults are the MNIST recipe of configs/cnn_mnist.py."""
    workdir: str = option("runs/cnn_mnist", "Output folder: metrics, checkpoints, plots, results; rerunning resumes.",
                          resumable=True)
    dataset: str = dataset_option()
    data_dir: str | None = data_dir_option()
    model: str = option("cnn", "Which classifier; both: each in workdir/<model>, and workdir/comparison.md.",
                        choices=(*MODELS, BOTH))
    cnn_features: tuple[int, ...] = option((32, 64), "CNN: channels of the 3x3 convs.")
    cnn_hidden_size: int = option(128, "CNN: units of the dense layer.", lower_bound=1)
    dense_hidden_sizes: tuple[int, ...] = option((512, 512), "Dense net: hidden sizes.")
    dropout_rate: float = option(0.25, "Dropout rate of both models (training only).")
    train_examples: int | None = option(None, "Train on the first N training images only (default: all).",
                                        lower_bound=1)
    train: TrainConfig = TrainConfig(epochs=12, batch_size=128, eval_batch_size=1000)
    optimizer: str = option("adam", "Optimizer.", choices=OPTIMIZERS)
    learning_rate: float = option(1e-3, "Peak learning rate.", lower_bound=0.0)
    lr_schedule: str = option("cosine", "Learning-rate schedule.", choices=SCHEDULES)

    def __post_init__(self):
        choices = {"dataset": (self.dataset, DATASETS), "model": (self.model, (*MODELS, BOTH)),
                   "optimizer": (self.optimizer, OPTIMIZERS), "lr_schedule": (self.lr_schedule, SCHEDULES)}
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ConfigError(f"--{name} must be one of {', '.join(allowed)}, got {value!r}")
        sizes = (*self.cnn_features, self.cnn_hidden_size, *self.dense_hidden_sizes)
        if not self.cnn_features or min(sizes) < 1:
            raise ConfigError(f"--cnn_features, --cnn_hidden_size and --dense_hidden_sizes must be >= 1, got "
                              f"{list(self.cnn_features)}, {self.cnn_hidden_size}, {list(self.dense_hidden_sizes)}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ConfigError(f"--dropout_rate must be in [0, 1), got {self.dropout_rate}")
        if self.train_examples is not None and self.train_examples < 1:
            raise ConfigError(f"--train_examples must be >= 1 (or unset for all), got {self.train_examples}")


def make_model(config: ImageClassifierConfig, num_classes: int) -> DenseNet | SmallCNN:
    if config.model == "cnn":
        return SmallCNN(num_classes=num_classes, features=tuple(config.cnn_features),
                        hidden_size=config.cnn_hidden_size, dropout_rate=config.dropout_rate)
    return DenseNet(num_classes=num_classes, hidden_sizes=tuple(config.dense_hidden_sizes),
                    dropout_rate=config.dropout_rate)


def _training_split(split: ImageSplit, train_examples: int | None) -> ImageSplit:
    if train_examples is None:
        return split
    if train_examples > len(split.labels):
        raise ConfigError(f"--train_examples={train_examples} but the training set has only "
                          f"{len(split.labels)} images")
    return ImageSplit(split.images[:train_examples], split.labels[:train_examples])


class ImageClassifierRecipe(lifecycle.RecipeBase[ImageClassifierConfig]):
    """A small CNN or a dense net on MNIST-like images, as a model family of vaecnn.lifecycle; model
    "both" runs each as a sub-run and writes comparison.md."""
    config_type = ImageClassifierConfig

    def subruns(self, config: ImageClassifierConfig) -> dict[str, ImageClassifierConfig]:
        if config.model != BOTH:
            return {}
        return {name: vconfig.override(config, {"model": name, "workdir": os.path.join(config.workdir, name)})
                for name in MODELS}

    def combine(self, config, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        return dict(results)

    def write_reports(self, config: ImageClassifierConfig, results: Mapping[str, Any]) -> None:
        summaries = {}
        for name in MODELS:
            with open(os.path.join(config.workdir, name, SUMMARY_FILE), encoding="utf-8") as f:
                summaries[name] = f.read()
        files.write_text(os.path.join(config.workdir, "comparison.md"),
                          format_comparison({name: results[name] for name in MODELS}, summaries))

    def build(self, config: ImageClassifierConfig, mesh, *, training: bool) -> lifecycle.Built:
        splits = load_image_dataset(config.dataset, config.data_dir)
        train_split, test_split = _training_split(splits["train"], config.train_examples), splits["test"]
        # Both splits: a training subset may lack a class.
        num_classes = max(train_split.num_classes, test_split.num_classes)
        test_data = ArrayBatcher.on_mesh({"image": test_split.images, "label": test_split.labels},
                                         sharding.round_up_to_devices(config.train.eval_batch_size, mesh), mesh)
        model = make_model(config, num_classes)
        task = ClassifierTask(model, ("image",))
        if not training:
            return lifecycle.Built(task, next(test_data.eval_batches()), eval_data={"test": test_data})
        logging.info("%s: %d train / %d test images of shape %s, %d classes", config.dataset,
                     len(train_split.labels), len(test_split.labels), train_split.images.shape[1:], num_classes)
        train_data = ArrayBatcher.on_mesh({"image": train_split.images, "label": train_split.labels},
                                          config.train.batch_size, mesh)
        optimizer = make_optimizer(config.optimizer, config.learning_rate,
                                   config.train.epochs * train_data.num_batches, config.lr_schedule)
        # One image: the table's MACs are per image. eval_shape inside summarize allocates nothing.
        image_shape = train_split.images.shape[1:]
        summary = arith.summarize(model, jax.ShapeDtypeStruct((1, *image_shape), jnp.uint8), deterministic=True)
        logging.info("%s: %s parameters, %s MACs per image", config.model, f"{summary.total_params:,}",
                     f"{summary.total_macs:,}")
        facts = {"summary": summary, "macs_per_image": summary.total_macs, "image_shape": image_shape, "num_classes": num_classes,
                 "num_train": len(train_split.labels), "num_test": len(test_split.labels)}
        return lifecycle.Built(task, next(test_data.eval_batches()), optimizer, train_data, {"test": test_data},
                               family=facts)

    def results(self, built, config: ImageClassifierConfig, fit, mesh) -> dict[str, Any]:
        final = fit.history[-1]
        facts = dict(built.family)
        files.write_text(os.path.join(config.workdir, SUMMARY_FILE), arith.format_summary(facts.pop("summary")) + "\n")
        title = f"{config.model} on {config.dataset}"
        plots.plot_curves(os.path.join(config.workdir, "loss_curve.png"), fit.history,
                           ["train/loss", "test/loss"], "cross-entropy (nats)", title)
        plots.plot_curves(os.path.join(config.workdir, "accuracy_curve.png"), fit.history,
                           ["train/accuracy", "test/accuracy"], "accuracy", title)
        return {"dataset": config.dataset, "model": config.model, "test_accuracy": final["test/accuracy"],
                "test_loss": final["test/loss"], "train_accuracy": final["train/accuracy"],
                "train_loss": final["train/loss"], **facts,
                "units": "loss: mean cross-entropy in nats; accuracy: fraction correct"}

    def evaluate(self, built, config: ImageClassifierConfig, params, mesh) -> dict[str, Any]:
        """The test accuracy and loss: results.json's own for the newest checkpoint."""
        metrics = lifecycle.test_metrics(built.task, params, built.eval_data["test"], config.train.seed, mesh)
        return {"model": config.model, "test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"]}


RECIPE = ImageClassifierRecipe()


def format_comparison(results: Mapping[str, Mapping[str, Any]], summaries: Mapping[str, str]) -> str:
    """Markdown: one row of results.json numbers per model, then each model's layer table."""
    first = next(iter(results.values()))
    lines = [
        f"# {' vs '.join(results)} on {first['dataset']}",
        "",
        f"{first['num_train']:,} training / {first['num_test']:,} test images of shape "
        f"{'×'.join(str(d) for d in first['image_shape'])}; numbers of the last epoch "
        f"(the test set picks nothing); hardware: {first['hardware']['device_kind']} "
        f"({first['hardware']['backend']}, {first['hardware']['host_cpus']} host CPUs).",
        "",
        "| model | parameters | MACs / image | epochs | test accuracy | test error | test loss "
        "| train accuracy | train seconds | images / s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {r['num_params']:,} | {r['macs_per_image']:,} | {r['epochs']} | {r['test_accuracy']:.4f} "
        f"| {100 * (1 - r['test_accuracy']):.2f}% | {r['test_loss']:.4f} | {r['train_accuracy']:.4f} "
        f"| {r['train_seconds']:.0f} | {r['train_examples_per_second']:,.0f} |"
        for name, r in results.items()
    ]
    for name, summary in summaries.items():
        lines += ["", f"## {name}: parameters and MACs per layer (one image)", "", "```", summary.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def arithmetic_report() -> str:
    """Markdown: the notes' four answers (TD-2, Exercise 1) and the dense-vs-conv table that
    answers "what problem do we have if the input is large?"."""
    answers = arith.notes_exercise_answers()
    rows = arith.dense_vs_conv_table()
    largest = rows[-1]
    return "\n".join([
        "# TD-2, Exercise 1: architecture arithmetic",
        "",
        "## The notes' answers (input 10×10×3, 20 outputs, 3×3 kernels)",
        "",
        "```",
        arith.format_notes_exercise_answers(answers),
        "```",
        "",
        "## Dense layer vs 3×3 convolution as the input grows (n×n×3 -> 20 maps)",
        "",
        arith.format_dense_vs_conv_table(rows),
        "",
        "A dense layer from n×n×3 to n×n×20 has (3n²)(20n²) = 60·n⁴ weights: they grow with the fourth "
        f"power of the image side, to {largest.dense_params:,} ({arith.format_bytes(largest.dense_weight_bytes)} "
        f"of float32) at {largest.input_size}×{largest.input_size}, more memory than any machine has; even where "
        "they fit, that many free weights overfit any realistic training set. The 3×3 convolution keeps "
        f"{largest.conv_params:,} whatever n: every output sees only a 3×3 neighbourhood and the same "
        "weights are reused at every position. What still grows is the activations' memory, as n² only.",
        "",
    ])

r"""Training throughput of the Elman RNN classifier: the project's jitted step against PyTorch's nn.RNN.

    python -m benchmarks.rnn_throughput --output=benchmarks/results/rnn_throughput.json

Both sides train the same network on the same shapes: embedding V x D -> dropout -> Elman RNN (tanh,
H units) -> hidden state at each sequence's last token -> dropout -> linear to 2 classes; softmax
cross-entropy, gradients clipped to global norm 5, Adam. The JAX side is vaecnn.train.make_train_step
on the RNNClassifier of vaecnn.models.rnn, i.e. the step the experiments run. PyTorch runs with
denormals flushed (torch.set_flush_denormal(True); without it, the tanh RNN's tiny gradients make it
several times slower on CPU).

Timing: warm-up steps (compilation included) are excluded; then the two sides alternate `repeats`
timed blocks of `steps` steps each (alternating, so a shared machine's load hits both alike), and the
median examples/s of each side is reported with its ratio.
"""

import statistics
import time

import jax
import numpy as np
import torch
from absl import app, flags

from vaecnn import report, sharding, train
from vaecnn.classification import ClassifierTask
from vaecnn.models.rnn import RNNClassifier
from vaecnn.optim import make_optimizer

FLAGS = flags.FLAGS
flags.DEFINE_string("output", "benchmarks/results/rnn_throughput.json", "Where the JSON goes.")
flags.DEFINE_integer("vocab_size", 16384, "V: embedding rows (about the SST-2 phrase vocabulary).")
flags.DEFINE_integer("embed_dim", 300, "D: embedding size.")
flags.DEFINE_integer("hidden_size", 300, "H: hidden units.")
flags.DEFINE_integer("batch_size", 50, "B: examples per step.")
flags.DEFINE_integer("seq_len", 50, "T: tokens per example.")
flags.DEFINE_float("dropout", 0.5, "Dropout rate on the embeddings and the last hidden state.")
flags.DEFINE_integer("warmup_steps", 5, "Untimed steps first (compilation included).")
flags.DEFINE_integer("steps", 20, "Steps per timed block.")
flags.DEFINE_integer("repeats", 5, "Timed blocks per side.")

NUM_CLASSES = 2
CLIP_NORM = 5.0
LEARNING_RATE = 1e-3


def _batch(rng: np.random.Generator, B: int, T: int, V: int) -> dict[str, np.ndarray]:
    """Random full-length sentences (the length gather still runs, as in training)."""
    return {"tokens": rng.integers(1, V, (B, T), dtype=np.int32), "length": np.full((B,), T, np.int32),
            "label": rng.integers(0, NUM_CLASSES, (B,), dtype=np.int32), "mask": np.ones((B,), np.float32)}


def jax_side(batch: dict[str, np.ndarray]):
    """A function running n training steps of the project's step, blocking until they are done."""
    model = RNNClassifier(FLAGS.vocab_size, NUM_CLASSES, embed_dim=FLAGS.embed_dim, hidden_size=FLAGS.hidden_size,
                          dropout_rate=FLAGS.dropout)
    task = ClassifierTask(model, ("tokens", "length"))
    optimizer = make_optimizer("adam", LEARNING_RATE, total_steps=1, clip_norm=CLIP_NORM)
    mesh = sharding.data_mesh()
    batch = jax.device_put(batch, sharding.batch_sharded(mesh))
    key = jax.random.key(0)
    state = train.init_state(task, optimizer, batch, key, mesh)
    step = train.make_train_step(task, optimizer, mesh)
    count = 0

    def run(n: int) -> None:
        nonlocal state, count
        for _ in range(n):
            state, metrics = step(state, batch, jax.random.fold_in(key, count))
            count += 1
        jax.block_until_ready((state, metrics))

    return run


class TorchRNNClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(FLAGS.vocab_size, FLAGS.embed_dim)
        self.rnn = torch.nn.RNN(FLAGS.embed_dim, FLAGS.hidden_size, nonlinearity="tanh", batch_first=True)
        self.dropout = torch.nn.Dropout(FLAGS.dropout)
        self.out = torch.nn.Linear(FLAGS.hidden_size, NUM_CLASSES)

    def forward(self, tokens_BxT: torch.Tensor, length_B: torch.Tensor) -> torch.Tensor:
        h_BxTxH, _ = self.rnn(self.dropout(self.embed(tokens_BxT)))
        h_BxH = h_BxTxH[torch.arange(h_BxTxH.shape[0]), length_B - 1]
        return self.out(self.dropout(h_BxH))


def torch_side(batch: dict[str, np.ndarray]):
    torch.manual_seed(0)
    model = TorchRNNClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    tokens_BxT = torch.from_numpy(batch["tokens"]).long()
    length_B = torch.from_numpy(batch["length"]).long()
    label_B = torch.from_numpy(batch["label"]).long()

    def run(n: int) -> None:
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(tokens_BxT, length_B), label_B)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()

    return run


def main(argv):
    del argv
    torch.set_flush_denormal(True)
    batch = _batch(np.random.default_rng(0), FLAGS.batch_size, FLAGS.seq_len, FLAGS.vocab_size)
    sides = {"jax": jax_side(batch), "torch": torch_side(batch)}
    for run in sides.values():
        run(FLAGS.warmup_steps)
    rates = {name: [] for name in sides}
    for _ in range(FLAGS.repeats):
        for name, run in sides.items():
            start = time.perf_counter()
            run(FLAGS.steps)
            rates[name].append(FLAGS.steps * FLAGS.batch_size / (time.perf_counter() - start))
    median = {name: statistics.median(values) for name, values in rates.items()}
    results = {
        "benchmark": "Elman RNN classifier training step (forward, backward, clip, Adam), examples/s",
        "jax": {"examples_per_second": median["jax"], "repeats": rates["jax"],
                "step": "vaecnn.train.make_train_step(ClassifierTask(RNNClassifier))"},
        "torch": {"examples_per_second": median["torch"], "repeats": rates["torch"], "flush_denormal": True,
                  "threads": torch.get_num_threads(), "step": "nn.Embedding + nn.RNN + nn.Linear, Adam"},
        "ratio_jax_over_torch": median["jax"] / median["torch"],
        "shapes": {"vocab_size": FLAGS.vocab_size, "embed_dim": FLAGS.embed_dim, "hidden_size": FLAGS.hidden_size,
                   "batch_size": FLAGS.batch_size, "seq_len": FLAGS.seq_len, "num_classes": NUM_CLASSES,
                   "dropout": FLAGS.dropout, "clip_norm": CLIP_NORM},
        "timing": {"warmup_steps": FLAGS.warmup_steps, "steps_per_repeat": FLAGS.steps, "repeats": FLAGS.repeats,
                   "statistic": "median over repeats, sides alternating"},
        "hardware": report.hardware(),
        "versions": {"jax": jax.__version__, "torch": torch.__version__},
    }
    report.write_json(FLAGS.output, results)
    print(f"jax {median['jax']:.0f} examples/s, torch {median['torch']:.0f} examples/s, "
          f"ratio {results['ratio_jax_over_torch']:.2f}; written to {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)

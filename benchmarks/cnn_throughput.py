r"""Training throughput of Kim's text CNN: the project's jitted step against the same model in PyTorch.

    ./launch.sh bench cnn_throughput   (writes benchmarks/results/cnn_throughput.{json,png})

Both sides train the same network on the same batch, the preset configs/kim_cnn_mr.py (Kim's CNN-rand on
MR): embedding V x D -> one wide convolution per width k (C channels, k - 1 zero vectors at both ends,
ReLU) -> max over time -> concatenation (F = sum C) -> dropout 0.5 -> linear to 2 classes; softmax
cross-entropy, Adadelta (lr 1, rho 0.95, eps 1e-6), then Kim's max-norm 3 on each class's output weight
vector. The JAX side is vaecnn.engine.make_train_step on the preset's model and optimizer
(text_classifier.make_text_optimizer: max-norm is its last transformation), i.e. the step
`experiments.cnn_sentiment --config=kim_cnn_mr` runs. Every sentence is T tokens long, so the JAX side's
window masking is exercised but masks nothing. PyTorch runs with denormals flushed. Timing protocol:
benchmarks/_harness.py.
"""

import dataclasses

import numpy as np
from absl import flags

from benchmarks import _harness
from benchmarks._harness import torch
from experiments import _cli
from configs import kim_cnn_mr
from vaecnn.classification import ClassifierTask
from vaecnn.recipes.text_classifier import INPUT_FIELDS, make_text_optimizer

FLAGS = flags.FLAGS
_DEFAULTS = kim_cnn_mr.get_config()  # the experiment's own preset: its model, optimizer and batch
MAX_NORM = _DEFAULTS.model.max_norm
ADADELTA = {"lr": _DEFAULTS.learning_rate, "rho": 0.95, "eps": 1e-6}  # vaecnn.optim's adadelta
_harness.define_flags("cnn_throughput")
flags.DEFINE_integer("vocab_size", 18765, "V: embedding rows (Kim's MR vocabulary size).", lower_bound=1)
flags.DEFINE_integer("embed_dim", _DEFAULTS.model.embed_dim, "D: embedding size.", lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULTS.train.batch_size, "B: sentences per step.", lower_bound=1)
flags.DEFINE_integer("seq_len", 50, "T: tokens per sentence.", lower_bound=1)

NUM_CLASSES = 2


class TorchTextCNN(torch.nn.Module):
    """vaecnn.models.text_cnn.TextCNN (embedding_mode "rand") in PyTorch, channels-first convolutions."""

    def __init__(self, vocab_size: int, embed_dim: int, widths, channels, dropout: float, wide: bool):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convs = torch.nn.ModuleList(torch.nn.Conv1d(embed_dim, c, k, padding=k - 1 if wide else 0)
                                         for k, c in zip(widths, channels))
        self.dropout = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(sum(channels), NUM_CLASSES)

    def forward(self, tokens_BxT: torch.Tensor) -> torch.Tensor:
        x_BxDxT = self.embed(tokens_BxT).transpose(1, 2)
        feat_BxF = torch.cat([torch.relu(conv(x_BxDxT)).amax(dim=2) for conv in self.convs], dim=1)
        return self.out(self.dropout(feat_BxF))


def torch_runner(batch: dict[str, np.ndarray]) -> _harness.Runner:
    torch.manual_seed(0)
    cnn = _DEFAULTS.model
    model = TorchTextCNN(FLAGS.vocab_size, FLAGS.embed_dim, cnn.widths, cnn.channels, cnn.dropout, cnn.wide)
    optimizer = torch.optim.Adadelta(model.parameters(), **ADADELTA)
    tokens_BxT, label_B = (torch.from_numpy(batch[name]).long() for name in ("tokens", "label"))

    @torch.no_grad()
    def max_norm() -> None:  # Linear.weight is K x F: row j is class j's weight vector
        model.out.weight.copy_(torch.renorm(model.out.weight, p=2, dim=0, maxnorm=MAX_NORM))

    return _harness.torch_runner(
        optimizer, lambda: torch.nn.functional.cross_entropy(model(tokens_BxT), label_B), after_step=max_norm)


def main(argv):
    del argv
    _harness.configure_torch()
    B, T, V = FLAGS.batch_size, FLAGS.seq_len, FLAGS.vocab_size
    batch = _harness.random_text_batch(B, T, V, NUM_CLASSES)
    cnn = _DEFAULTS.model
    model = dataclasses.replace(cnn, embed_dim=FLAGS.embed_dim).build(V, NUM_CLASSES)
    optimizer = make_text_optimizer(_DEFAULTS, total_steps=1)
    sides = {"jax": _harness.jax_runner(ClassifierTask(model, INPUT_FIELDS), optimizer, batch),
             "torch": torch_runner(batch)}
    _harness.run_and_write(
        sides, B,
        "Kim text CNN training step (embed, convolutions, max-pool, dropout, linear, backward, Adadelta, max-norm), "
        "examples/s",
        {"vocab_size": V, "embed_dim": FLAGS.embed_dim, "widths": list(cnn.widths), "channels": list(cnn.channels),
         "wide": cnn.wide, "batch_size": B, "seq_len": T, "num_classes": NUM_CLASSES, "dropout": cnn.dropout,
         "optimizer": f"adadelta({ADADELTA})", "max_norm": MAX_NORM, "preset": "kim_cnn_mr"})


if __name__ == "__main__":
    _cli.run(main)

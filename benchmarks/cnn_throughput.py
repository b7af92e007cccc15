r"""Training throughput of Kim's text CNN: the project's jitted step against the same model in PyTorch.

    ./launch.sh bench cnn_throughput   (writes benchmarks/results/cnn_throughput.{json,png})

Both sides train the same network on the same batch (Kim's CNN-rand on MR): embedding V x D -> one
convolution per width k (C channels, VALID, ReLU) -> max over time -> concatenation (F = sum C) ->
dropout 0.5 -> linear to 2 classes; softmax cross-entropy, Adadelta (lr 1, rho 0.95, eps 1e-6), then
Kim's max-norm 3 on each class's output weight vector. The JAX side is vaecnn.engine.make_train_step on
ClassifierTask(TextCNN), i.e. the step `experiments.cnn_sentiment` runs, with the max-norm projection as
the optimizer's last transformation (vaecnn.models.text_cnn.max_norm_constraint: the same arithmetic as
the experiment's post-update projection). Every sentence is T tokens long, so the JAX side's window
masking is exercised but masks nothing. PyTorch runs with denormals flushed. Timing protocol:
benchmarks/_harness.py.
"""

import numpy as np
import optax
from absl import flags

from benchmarks import _harness
from benchmarks._harness import torch
from experiments import _cli
from vaecnn.classification import ClassifierTask
from vaecnn.models.text_cnn import TextCNN, max_norm_constraint
from vaecnn.optim import make_optimizer
from vaecnn.recipes.text_classifier import INPUT_FIELDS, TextClassifierConfig

FLAGS = flags.FLAGS
_DEFAULTS = TextClassifierConfig(workdir="", dataset="mr", model="cnn")
MAX_NORM = 3.0  # Kim's s (experiments.cnn_sentiment's --max_norm default)
ADADELTA = {"lr": 1.0, "rho": 0.95, "eps": 1e-6}  # vaecnn.optim's adadelta
_harness.define_flags("cnn_throughput")
flags.DEFINE_integer("vocab_size", 18765, "V: embedding rows (Kim's MR vocabulary size).", lower_bound=1)
flags.DEFINE_integer("embed_dim", _DEFAULTS.embed_dim, "D: embedding size.", lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "B: sentences per step.", lower_bound=1)
flags.DEFINE_integer("seq_len", 50, "T: tokens per sentence.", lower_bound=1)

NUM_CLASSES = 2


class TorchTextCNN(torch.nn.Module):
    """vaecnn.models.text_cnn.TextCNN (embedding_mode "rand") in PyTorch, channels-first convolutions."""

    def __init__(self, vocab_size: int, embed_dim: int, widths, channels, dropout: float):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convs = torch.nn.ModuleList(torch.nn.Conv1d(embed_dim, c, k) for k, c in zip(widths, channels))
        self.dropout = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(sum(channels), NUM_CLASSES)

    def forward(self, tokens_BxT: torch.Tensor) -> torch.Tensor:
        x_BxDxT = self.embed(tokens_BxT).transpose(1, 2)
        feat_BxF = torch.cat([torch.relu(conv(x_BxDxT)).amax(dim=2) for conv in self.convs], dim=1)
        return self.out(self.dropout(feat_BxF))


def torch_runner(batch: dict[str, np.ndarray]) -> _harness.Runner:
    torch.manual_seed(0)
    model = TorchTextCNN(FLAGS.vocab_size, FLAGS.embed_dim, _DEFAULTS.widths, _DEFAULTS.channels, _DEFAULTS.dropout)
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
    model = TextCNN(NUM_CLASSES, widths=_DEFAULTS.widths, channels=_DEFAULTS.channels, embed_dim=FLAGS.embed_dim,
                    vocab_size=V, dropout_rate=_DEFAULTS.dropout)
    optimizer = optax.chain(make_optimizer("adadelta", ADADELTA["lr"], total_steps=1), max_norm_constraint(MAX_NORM))
    sides = {"jax": _harness.jax_runner(ClassifierTask(model, INPUT_FIELDS), optimizer, batch),
             "torch": torch_runner(batch)}
    _harness.run_and_write(
        sides, B,
        "Kim text CNN training step (embed, convolutions, max-pool, dropout, linear, backward, Adadelta, max-norm), "
        "examples/s",
        {"vocab_size": V, "embed_dim": FLAGS.embed_dim, "widths": list(_DEFAULTS.widths),
         "channels": list(_DEFAULTS.channels), "batch_size": B, "seq_len": T, "num_classes": NUM_CLASSES,
         "dropout": _DEFAULTS.dropout, "optimizer": f"adadelta({ADADELTA})", "max_norm": MAX_NORM})


if __name__ == "__main__":
    _cli.run(main)

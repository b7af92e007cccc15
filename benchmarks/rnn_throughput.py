r"""Training throughput of the Elman RNN classifier: the project's jitted step against PyTorch's nn.RNN.

    ./launch.sh bench rnn_throughput        (writes benchmarks/results/rnn_throughput.json)

Both sides train the same network on the same batch: embedding V x D -> dropout -> Elman RNN (tanh,
H units) -> hidden state at each sentence's last token -> dropout -> linear to 2 classes; softmax
cross-entropy, gradients clipped to global norm 5, Adam(1e-3). The JAX side is
vaecnn.engine.make_train_step on ClassifierTask(RNNClassifier), i.e. the step `experiments.rnn_sentiment`
runs. PyTorch runs with denormals flushed (without that, the tanh RNN's tiny gradients make it about 6
times slower on this CPU), on one thread by default (see --torch_threads). Timing protocol:
benchmarks/_harness.py.
"""

import dataclasses

import numpy as np
from absl import flags

from benchmarks import _harness
from benchmarks._harness import torch
from experiments import _cli
from configs import rnn_sentiment
from vaecnn.classification import ClassifierTask
from vaecnn.recipes.text_classifier import INPUT_FIELDS, make_text_optimizer

FLAGS = flags.FLAGS
_DEFAULTS = rnn_sentiment.get_config()  # the experiment's own preset: its model, optimizer and batch
_harness.define_flags("rnn_throughput")
flags.DEFINE_integer("vocab_size", 13824, "V: embedding rows (the SST-2 phrase vocabulary's size).", lower_bound=1)
flags.DEFINE_integer("embed_dim", _DEFAULTS.model.embed_dim, "D: embedding size.", lower_bound=1)
flags.DEFINE_integer("hidden_size", _DEFAULTS.model.hidden_size, "H: hidden units.", lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULTS.train.batch_size, "B: sentences per step.", lower_bound=1)
flags.DEFINE_integer("seq_len", 50, "T: tokens per sentence.", lower_bound=1)

NUM_CLASSES = 2


class TorchRNNClassifier(torch.nn.Module):
    """The RNNClassifier of vaecnn.models.rnn in PyTorch: nn.RNN has the same two biases b_ih, b_hh."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, dropout: float):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, embed_dim)
        self.rnn = torch.nn.RNN(embed_dim, hidden_size, nonlinearity="tanh", batch_first=True)
        self.dropout = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(hidden_size, NUM_CLASSES)

    def forward(self, tokens_BxT: torch.Tensor, length_B: torch.Tensor) -> torch.Tensor:
        h_BxTxH, _ = self.rnn(self.dropout(self.embed(tokens_BxT)))
        h_BxH = h_BxTxH[torch.arange(h_BxTxH.shape[0]), length_B - 1]
        return self.out(self.dropout(h_BxH))


def torch_runner(batch: dict[str, np.ndarray]) -> _harness.Runner:
    torch.manual_seed(0)
    model = TorchRNNClassifier(FLAGS.vocab_size, FLAGS.embed_dim, FLAGS.hidden_size, _DEFAULTS.model.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=_DEFAULTS.learning_rate)
    tokens_BxT, length_B, label_B = (torch.from_numpy(batch[name]).long() for name in ("tokens", "length", "label"))
    return _harness.torch_runner(
        optimizer, lambda: torch.nn.functional.cross_entropy(model(tokens_BxT, length_B), label_B),
        after_backward=lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), _DEFAULTS.clip_norm))


def main(argv):
    del argv
    _harness.configure_torch()
    B, T, V = FLAGS.batch_size, FLAGS.seq_len, FLAGS.vocab_size
    batch = _harness.random_text_batch(B, T, V, NUM_CLASSES)
    model = dataclasses.replace(_DEFAULTS.model, embed_dim=FLAGS.embed_dim,
                                hidden_size=FLAGS.hidden_size).build(V, NUM_CLASSES)
    optimizer = make_text_optimizer(_DEFAULTS, total_steps=1)
    sides = {"jax": _harness.jax_runner(ClassifierTask(model, INPUT_FIELDS), optimizer, batch),
             "torch": torch_runner(batch)}
    _harness.run_and_write(
        sides, B,
        "Elman RNN classifier training step (embed, RNN, last state, linear, backward, clip, Adam), examples/s",
        {"vocab_size": V, "embed_dim": FLAGS.embed_dim, "hidden_size": FLAGS.hidden_size, "batch_size": B,
         "seq_len": T, "num_classes": NUM_CLASSES, "activation": "tanh", "dropout": _DEFAULTS.model.dropout,
         "clip_norm": _DEFAULTS.clip_norm, "optimizer": f"adam({_DEFAULTS.learning_rate})"})


if __name__ == "__main__":
    _cli.run(main)

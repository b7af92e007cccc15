"""The VAE experiment end to end: outputs, resume, real-data learning, and the CLI's errors."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import chex
import numpy as np
import pytest
from PIL import Image

from vaecnn import config as vconfig
from vaecnn import lifecycle
from vaecnn.errors import ConfigError
from vaecnn.data.images import binarize_once
from vaecnn.models.vae import VAE, make_vae
from vaecnn.recipes import vae as vae_recipe
from vaecnn.recipes.vae import RECIPE, VAEConfig, VAETask, interpolation_latents, manifold_latents
from vaecnn.metrics_log import MetricsLog

pytestmark = pytest.mark.slow  # end-to-end runs and subprocesses: ./launch.sh test --quick leaves them out

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def small_config(workdir, **overrides) -> VAEConfig:
    values = dict(workdir=str(workdir), dataset="digits", hidden_sizes=(64,), latent_dim=4, epochs=3,
                  batch_size=50, eval_batch_size=100)
    values.update(overrides)
    return vconfig.override(VAEConfig(), values)


def run(config, **options):
    return lifecycle.run(RECIPE, config, **options)


def test_digits_run_writes_every_output_and_learns(tmp_path):
    results = run(small_config(tmp_path, eval_iw_samples=20))
    for key in ("dataset", "epochs", "test_neg_elbo", "test_recon", "test_kl", "train_seconds",
                "train_examples_per_second", "num_params", "test_nll_iw", "iw_samples"):
        assert key in results, key
    on_disk = json.load(open(tmp_path / "results.json"))
    assert on_disk["test_neg_elbo"] == pytest.approx(results["test_neg_elbo"])
    assert results["test_neg_elbo"] == pytest.approx(results["test_recon"] + results["test_kl"], rel=1e-5)
    # The IW estimate is a tighter bound: -log p(x) <= -ELBO up to Monte-Carlo noise.
    assert results["test_nll_iw"] < results["test_neg_elbo"] + 0.5
    lines = MetricsLog(str(tmp_path / "metrics.jsonl")).read()
    assert len(lines) == 3 and lines[-1]["test/neg_elbo"] < lines[0]["test/neg_elbo"]
    assert_pictures(tmp_path, "reconstructions.png", "samples.png", "interpolation.png", "loss_curve.png")
    # The latent-plane pictures need latent_dim = 2.
    assert not os.path.exists(tmp_path / "latent_manifold.png")


def assert_pictures(workdir, *names):
    for picture in names:
        with Image.open(workdir / picture) as image:
            assert image.width > 50 and image.height > 20
            assert np.asarray(image).std() > 0  # not a blank picture


def test_conv_iwae_run_with_a_2d_latent_space_draws_its_pictures(tmp_path):
    results = run(small_config(tmp_path, arch="conv", conv_features=(4, 8), latent_dim=2, objective="iwae",
                               num_samples=3, epochs=2))
    assert results["config"]["arch"] == "conv" and results["config"]["objective"] == "iwae"
    # Both bounds are reported; the 3-sample bound is the tighter one.
    assert results["test_neg_iwae"] < results["test_neg_elbo"]
    assert "train/neg_iwae" in MetricsLog(str(tmp_path / "metrics.jsonl")).read()[-1]
    assert_pictures(tmp_path, "latent_manifold.png", "latent_scatter.png", "interpolation.png", "reconstructions.png")
    with Image.open(tmp_path / "latent_manifold.png") as image:  # 15 x 15 digits of 8 x 8 pixels, 2 apart, x2
        assert image.size == (2 * (15 * 10 + 2),) * 2


def test_iwae_objective_with_one_sample_is_the_elbo_in_expectation():
    """L_1 = log w = log p(x|z) + log p(z) - log q(z|x) differs from the ELBO estimator only in its
    one-sample KL: same mean. With k = 8 the bound is tighter (-L_8 below -ELBO)."""
    model = make_vae((8, 8, 1), hidden_sizes=(16,), latent_dim=3)
    images = jax.random.randint(jax.random.key(0), (6, 8, 8, 1), 0, 256).astype(jnp.uint8)
    batch = {"image": images, "mask": jnp.ones(6)}
    params = VAETask(model).init_params(jax.random.key(1), batch)
    # Fixed binarized inputs: the same x under every key, so only z varies.
    batch["image"] = (VAETask(model).inputs(jax.random.key(2), images) * 255).astype(jnp.uint8)
    keys = jax.random.split(jax.random.key(3), 4000)

    def losses(objective, num_samples):
        task = VAETask(model, num_samples, objective)
        return np.asarray(jax.jit(jax.vmap(lambda key: task.loss(params, batch, key)[0]))(keys))

    elbo, iwae_1, iwae_8 = losses("elbo", 1), losses("iwae", 1), losses("iwae", 8)
    standard_error = np.sqrt((elbo.var() + iwae_1.var()) / len(keys))
    assert abs(elbo.mean() - iwae_1.mean()) < 4 * standard_error, (elbo.mean(), iwae_1.mean(), standard_error)
    assert iwae_8.mean() < elbo.mean() - 4 * standard_error


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_an_evaluation_reads_the_fixed_test_bits_as_the_random_draw_would(likelihood):
    """The test set arrives binarized once (pixels 0 or 255): a Bernoulli draw of probability 0 or 1 is
    that bit under any key, so evaluation reads it without drawing: the same inputs, bit for bit, and the
    same metrics to float rounding (the compiled program differs, so XLA may sum in another order)."""
    model = make_vae((8, 8, 1), hidden_sizes=(16,), latent_dim=3, likelihood=likelihood)
    grey = jax.random.randint(jax.random.key(0), (6, 8, 8, 1), 0, 256).astype(jnp.uint8)
    binarized = binarize_once(0, np.asarray(grey)) if likelihood == "bernoulli" else np.asarray(grey)
    task = VAETask(model)
    for key in jax.random.split(jax.random.key(1), 5):
        chex.assert_trees_all_equal(task.fixed_inputs(binarized), task.inputs(key, binarized))
    batch = {"image": jnp.asarray(binarized), "mask": jnp.ones(6)}
    params = task.init_params(jax.random.key(2), batch)
    drawn = jax.jit(lambda key: task._metrics(task.terms(params, batch, key, 1), batch["mask"]))
    for key in jax.random.split(jax.random.key(3), 3):
        chex.assert_trees_all_close(jax.jit(task.evaluate)(params, batch, key), drawn(key), rtol=1e-6)
    if likelihood == "bernoulli":  # on grey images the two differ: fixed_inputs is for fixed images only
        assert not np.array_equal(task.fixed_inputs(grey), task.inputs(jax.random.key(4), grey))


def test_picture_latents():
    z = interpolation_latents(jnp.zeros((2, 3)), jnp.ones((2, 3)), 5)
    np.testing.assert_allclose(z[1, :, 0], [0.0, 0.25, 0.5, 0.75, 1.0])
    grid = manifold_latents(3)
    assert grid.shape == (9, 2)
    np.testing.assert_allclose(grid[4], [0.0, 0.0], atol=1e-6)   # the centre is the prior's mode
    assert grid[0, 0] < grid[2, 0] and grid[0, 1] > grid[6, 1]   # z1 rises along a row, z2 falls down the rows


def test_the_pictures_one_program_draws_what_each_model_method_gives():
    """_picture_arrays computes every picture in one compiled program; each array must be the one the
    model's own methods give (the interpolation's rows: a digit, the decodes between, the next digit)."""
    task = VAETask(make_vae((8, 8, 1), hidden_sizes=(16,), latent_dim=2))
    images = np.asarray(jax.random.randint(jax.random.key(0), (40, 8, 8, 1), 0, 2) * 255, np.uint8)
    params = jax.jit(task.init_params)(jax.random.key(1), {"image": jnp.asarray(images)})
    key = jax.random.key(2)
    arrays = jax.jit(lambda params, images, key: vae_recipe._picture_arrays(task, True, params, images, key))(
        params, images, key)
    steps = vae_recipe.INTERPOLATION_STEPS

    @jax.jit  # each picture from its own method call
    def separately(params, images, key):
        apply = lambda method, *args: task.model.apply({"params": params}, *args, method=method)
        x = task.fixed_inputs(images)
        originals = x[:vae_recipe.NUM_PICTURE_IMAGES]
        z_samples = jax.random.normal(jax.random.split(key)[1], (vae_recipe.NUM_SAMPLE_IMAGES, 2))
        means = apply(VAE.encode, originals)[0]
        between = apply(VAE.mean_image, interpolation_latents(means[0:1], means[1:2], steps))[0]
        return {"originals": originals, "reconstructions": apply(VAE.reconstruct, originals),
                "samples": apply(VAE.mean_image, z_samples),
                "first_row": jnp.concatenate([originals[:1], between, originals[1:2]]),
                "manifold": apply(VAE.mean_image, manifold_latents(vae_recipe.MANIFOLD_SIZE)),
                "scatter_means": apply(VAE.encode, x)[0]}

    expected = separately(params, images, key)
    first_row = expected.pop("first_row")
    chex.assert_trees_all_close({name: arrays[name] for name in expected}, expected, atol=1e-6)
    assert arrays["interpolation"].shape == (vae_recipe.NUM_INTERPOLATIONS * (steps + 2), 8, 8, 1)
    chex.assert_trees_all_close(arrays["interpolation"][:steps + 2], first_row, atol=1e-6)
    assert arrays["scatter_means"].shape == (40, 2)


@pytest.mark.parametrize("overrides, flag", [({"arch": "resnet"}, "--arch"), ({"objective": "vimco"}, "--objective"),
                                             ({"arch": "conv", "conv_features": ()}, "--conv_features")])
def test_bad_config_values_name_their_flag(tmp_path, overrides, flag):
    with pytest.raises(ConfigError, match=flag):
        small_config(tmp_path, **overrides)


def test_rerun_resumes_and_extends(tmp_path):
    run(small_config(tmp_path, epochs=1))
    first_line = MetricsLog(str(tmp_path / "metrics.jsonl")).read()[0]
    # The library checks a resumed config as the command line does: a longer run must be allowed.
    with pytest.raises(ConfigError, match="--epochs 1 -> 2"):
        run(small_config(tmp_path, epochs=2))
    results = run(small_config(tmp_path, epochs=2), allow_changes=["epochs"])
    assert results["epochs"] == 2
    lines = MetricsLog(str(tmp_path / "metrics.jsonl")).read()
    assert [line["epoch"] for line in lines] == [1, 2]
    # Epoch 1 was resumed, not trained again: its line, timings included, is the first run's own.
    assert lines[0] == first_line


@pytest.mark.real_data
def test_learns_on_real_mnist(real_data_dir, tmp_path):
    """Two epochs of the default model: an untrained one scores ~543 nats (784 log 2), one that only
    knew each pixel's mean ~206; the default recipe is at ~113 after two epochs."""
    results = run(vconfig.override(VAEConfig(), dict(workdir=str(tmp_path), dataset="mnist", data_dir=real_data_dir,
                                                        epochs=2)))
    assert results["test_neg_elbo"] < 125, results["test_neg_elbo"]


def cli(*flags, env=None):
    return subprocess.run([sys.executable, "-m", "experiments.vae_mnist", *flags], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_bad_flag_value_is_one_clear_error(tmp_path):
    result = cli("--likelihood=poisson", f"--workdir={tmp_path}")
    assert result.returncode != 0
    assert "likelihood" in result.stderr and "Traceback" not in result.stderr


def test_cli_missing_data_is_one_clear_error(tmp_path):
    result = cli(f"--data_dir={tmp_path / 'nowhere'}", f"--workdir={tmp_path / 'run'}")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no local copy of mnist") and "--data_dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_gaussian_learned_variance_runs_end_to_end(tmp_path):
    result = cli("--dataset=digits", "--epochs=1", "--hidden_sizes=32", "--latent_dim=2", "--likelihood=gaussian",
                 "--gaussian_logvar=learned", "--eval_iw_samples=10", f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.load(open(tmp_path / "results.json"))
    assert results["config"]["likelihood"] == "gaussian" and results["config"]["gaussian_logvar"] is None
    assert results["test_binarization"] == "none"
    # Gaussian densities of [0, 1] pixels can exceed 1: the nats may be negative, but they are finite.
    assert np.isfinite(results["test_neg_elbo"]) and np.isfinite(results["test_nll_iw"])
    assert "test -log p(x)" in result.stdout


def test_cli_digits_demo_runs(tmp_path):
    result = cli("--dataset=digits", "--epochs=1", "--hidden_sizes=32", "--latent_dim=2", f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test negative ELBO" in result.stdout
    assert os.path.exists(tmp_path / "results.json")

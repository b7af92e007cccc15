"""Score-function and reparameterization gradients, checked against a gradient known in closed form.

The problem is the ELBO's reconstruction term for a linear-Gaussian model (as in test_objectives):
    x | z ~ N(W z + b, s^2 I),   q_phi(z|x) = N(x A + c, diag(exp(v))),   phi = (A, c, v)
    E_q[log p(x|z)] = log N(x; W mean + b, s^2 I) - 1/2 sum_j exp(v_j) ||W[:, j]||^2 / s^2
so grad_phi E_q[log p(x|z)] is jax.grad of that closed form.
"""

import functools
import json
import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from vaecnn.estimators import gradient_moments, reparameterization_gradient, score_function_gradient
from vaecnn.likelihoods import gaussian_log_prob

W = np.array([[1.0, 0.5], [-0.3, 0.8], [0.2, -1.1]])
B = np.array([0.1, -0.2, 0.3])
NOISE_LOGVAR = np.log(0.5)
X = np.random.default_rng(0).normal(size=(4, 3)) * 1.5
PARAMS = {"A": np.array([[0.4, -0.1], [0.2, 0.3], [-0.5, 0.1]]), "c": np.array([0.1, -0.2]),
          "v": np.array([-0.5, -1.0])}
NUM_ESTIMATES = 4000

ESTIMATORS = {
    "reparameterization": reparameterization_gradient,
    "score_function": score_function_gradient,
    "score_function_f_at_mean": lambda *args: score_function_gradient(*args, baseline="f_at_mean"),
    "score_function_leave_one_out": lambda *args: score_function_gradient(*args, baseline="leave_one_out"),
}


def encode(params):
    mean_BxZ = jnp.asarray(X) @ params["A"] + params["c"]
    return mean_BxZ, jnp.broadcast_to(params["v"], mean_BxZ.shape)


def log_likelihood(z_SxBxZ):
    return gaussian_log_prob(jnp.asarray(X), z_SxBxZ @ W.T + B, NOISE_LOGVAR)


def expected_log_likelihood(params):
    """mean_b E_q[log p(x_b|z)] in closed form."""
    mean_BxZ, logvar_BxZ = encode(params)
    trace_term_B = 0.5 * jnp.sum(jnp.exp(logvar_BxZ) * np.sum(W ** 2, axis=0), axis=-1) / np.exp(NOISE_LOGVAR)
    return jnp.mean(log_likelihood(mean_BxZ[None])[0] - trace_term_B)


# (estimator, S) pairs the tests read: every estimator at S = 2, and the reparameterization at S = 16.
MEASURED = (*[(name, 2) for name in ESTIMATORS], ("reparameterization", 16))


@functools.cache  # the tests share one compiled program of every scan (all under enable_x64)
def _all_moments():
    params = jax.tree.map(jnp.asarray, PARAMS)

    def measure(key):
        return [gradient_moments(lambda key, name=name, s=s: ESTIMATORS[name](key, params, encode, log_likelihood, s),
                                 key, NUM_ESTIMATES) for name, s in MEASURED]

    return dict(zip(MEASURED, jax.jit(measure)(jax.random.key(0))))


def moments(name, num_samples):
    """GradientMoments of NUM_ESTIMATES independent estimates of one estimator with S = num_samples."""
    return _all_moments()[name, num_samples]


class EstimatorsTest(chex.TestCase):

    def setUp(self):
        super().setUp()
        self.enter_context(jax.enable_x64(True))

    @pytest.mark.slow
    def test_every_estimator_is_unbiased(self):
        """Each estimator's mean over 4000 independent estimates matches the exact gradient within
        5 standard errors, for every parameter."""
        exact = jax.grad(expected_log_likelihood)(jax.tree.map(jnp.asarray, PARAMS))
        for name in ESTIMATORS:
            stats = moments(name, num_samples=2)
            for path, mean, variance, truth in zip(jax.tree.leaves_with_path(stats.mean),
                                                   jax.tree.leaves(stats.mean), jax.tree.leaves(stats.variance),
                                                   jax.tree.leaves(exact)):
                standard_error = np.sqrt(np.asarray(variance) / NUM_ESTIMATES)
                np.testing.assert_array_less(np.abs(mean - truth), 5 * standard_error + 1e-9,
                                             err_msg=f"{name} {jax.tree_util.keystr(path[0])}")

    def test_variance_ordering_and_one_over_s_scaling(self):
        """Reparameterization < score function with a baseline < score function without one; the
        baseline matters because log p(x|z) sits far from 0 (its constant shifts every f(z_s))."""
        total = {name: float(moments(name, num_samples=2).total_variance()) for name in ESTIMATORS}
        assert total["reparameterization"] < total["score_function_f_at_mean"] < total["score_function"], total
        assert total["score_function_leave_one_out"] < total["score_function"] / 2, total
        # Independent samples: variance ~ 1/S.
        ratio = total["reparameterization"] / float(moments("reparameterization", 16).total_variance())
        assert 6 < ratio < 10.7, ratio

    def test_gradient_moments_match_numpy(self):
        draws = lambda key: {"a": jax.random.normal(key, (3,)) * jnp.array([1.0, 2.0, 3.0]) + 5.0}
        stats = gradient_moments(draws, jax.random.key(1), 50)
        samples = np.stack([draws(jax.random.fold_in(jax.random.key(1), i))["a"] for i in range(50)])
        np.testing.assert_allclose(stats.mean["a"], samples.mean(0), rtol=1e-10)
        np.testing.assert_allclose(stats.variance["a"], samples.var(0, ddof=1), rtol=1e-8)
        np.testing.assert_allclose(stats.total_variance(), samples.var(0, ddof=1).sum(), rtol=1e-8)

    def test_bad_arguments(self):
        params = jax.tree.map(jnp.asarray, PARAMS)
        with pytest.raises(ValueError, match="num_samples >= 2"):
            score_function_gradient(jax.random.key(0), params, encode, log_likelihood, 1, "leave_one_out")
        with pytest.raises(ValueError, match="baseline"):
            score_function_gradient(jax.random.key(0), params, encode, log_likelihood, 2, "average")
        with pytest.raises(ValueError, match="num_estimates"):
            gradient_moments(lambda key: params, jax.random.key(0), 1)


@pytest.mark.slow
def test_gradient_estimators_experiment_on_digits(tmp_path):
    """The experiment end to end at CI size: a 2-epoch VAE on sklearn's digits, measured twice."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-m", "experiments.gradient_estimators", "--dataset=digits", "--epochs=2",
         "--measure_epochs=1,2", "--num_samples=1,2", "--num_estimates=5", "--num_images=8", "--hidden_sizes=32",
         "--latent_dim=2", f"--workdir={tmp_path}"], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    measurements = json.load(open(tmp_path / "gradient_variance.json"))["measurements"]
    assert [line["epoch"] for line in measurements] == [1, 2]
    rows = {(row["estimator"], row["num_samples"]): row["total_variance"] for row in measurements[-1]["rows"]}
    assert len(rows) == 7  # four estimators at S = 2, all but leave-one-out at S = 1
    assert rows["reparameterization", 1] < rows["score function", 1]
    table = open(tmp_path / "gradient_variance.md").read()
    assert "| 2 | score function, leave-one-out baseline | — |" in table
    with Image.open(tmp_path / "gradient_variance.png") as image:
        assert image.width > 400 and np.asarray(image).std() > 0
    assert os.path.exists(tmp_path / "vae" / "results.json")

"""The three closed-form KLs against independent computations and their defining properties."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized

from vaecnn import kl_diag_normal, kl_mvn, kl_std_normal


def random_spd(rng: np.random.Generator, dim: int, condition_number: float = 10.0) -> np.ndarray:
    """A random symmetric positive-definite matrix with the given condition number."""
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    eigenvalues = np.geomspace(1.0, condition_number, dim) * rng.uniform(0.5, 2.0)
    return (q * eigenvalues) @ q.T


def numpy_kl_mvn(mean_q, cov_q, mean_p, cov_p) -> float:
    """The notes' formula, literally: inverse, trace and determinants in float64."""
    dim = len(mean_q)
    cov_p_inv = np.linalg.inv(cov_p)
    diff = mean_p - mean_q
    return 0.5 * (np.trace(cov_p_inv @ cov_q) + diff @ cov_p_inv @ diff - dim
                  + np.log(np.linalg.det(cov_p) / np.linalg.det(cov_q)))


def monte_carlo_kl(rng, mean_q, cov_q, mean_p, cov_p, num_samples=200_000):
    """E_q[log q - log p] by sampling q: (estimate, standard error)."""
    def log_density(z, mean, cov):
        diff = z - mean
        solved = np.linalg.solve(cov, diff.T).T
        return -0.5 * (np.sum(diff * solved, -1) + np.linalg.slogdet(cov)[1] + len(mean) * np.log(2 * np.pi))
    z = rng.multivariate_normal(mean_q, cov_q, size=num_samples)
    values = log_density(z, mean_q, cov_q) - log_density(z, mean_p, cov_p)
    return values.mean(), values.std() / np.sqrt(num_samples)


class KlMvnTest(chex.TestCase):

    @parameterized.parameters((1, 3.0), (3, 10.0), (5, 1e3))
    def test_matches_numpy_formula(self, dim, condition_number):
        rng = np.random.default_rng(dim)
        for _ in range(5):
            mean_q, mean_p = rng.normal(size=dim), rng.normal(size=dim)
            cov_q, cov_p = random_spd(rng, dim, condition_number), random_spd(rng, dim, condition_number)
            expected = numpy_kl_mvn(mean_q, cov_q, mean_p, cov_p)
            actual = kl_mvn(*(jnp.asarray(a, jnp.float32) for a in (mean_q, cov_q, mean_p, cov_p)))
            np.testing.assert_allclose(actual, expected, rtol=2e-3, atol=1e-4)

    def test_ill_conditioned_in_float64(self):
        with jax.enable_x64(True):
            rng = np.random.default_rng(7)
            mean_q, mean_p = rng.normal(size=6), rng.normal(size=6)
            cov_q, cov_p = random_spd(rng, 6, 1e8), random_spd(rng, 6, 1e8)
            expected = numpy_kl_mvn(mean_q, cov_q, mean_p, cov_p)
            np.testing.assert_allclose(kl_mvn(mean_q, cov_q, mean_p, cov_p), expected, rtol=1e-6)

    def test_matches_monte_carlo(self):
        rng = np.random.default_rng(0)
        mean_q, mean_p = rng.normal(size=3), rng.normal(size=3)
        cov_q, cov_p = random_spd(rng, 3), random_spd(rng, 3)
        estimate, standard_error = monte_carlo_kl(rng, mean_q, cov_q, mean_p, cov_p)
        closed_form = float(kl_mvn(*(jnp.asarray(a, jnp.float32) for a in (mean_q, cov_q, mean_p, cov_p))))
        assert abs(closed_form - estimate) < 5 * standard_error, (closed_form, estimate, standard_error)

    @chex.variants(with_jit=True, without_jit=True)
    def test_batched_shapes_and_broadcasting(self):
        rng = np.random.default_rng(1)
        mean_q = jnp.asarray(rng.normal(size=(4, 2, 3)), jnp.float32)
        cov_q = jnp.asarray(np.stack([random_spd(rng, 3) for _ in range(8)]).reshape(4, 2, 3, 3), jnp.float32)
        kl = self.variant(kl_mvn)(mean_q, cov_q, jnp.zeros(3), jnp.eye(3))
        chex.assert_shape(kl, (4, 2))
        chex.assert_tree_all_finite(kl)
        for i in range(4):
            for j in range(2):
                np.testing.assert_allclose(kl[i, j], kl_mvn(mean_q[i, j], cov_q[i, j], jnp.zeros(3), jnp.eye(3)),
                                           rtol=1e-5)

    def test_reduces_to_std_normal_and_diagonal_forms(self):
        rng = np.random.default_rng(2)
        mean_q, logvar_q = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
        mean_p, logvar_p = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
        diag = lambda logvar: jnp.asarray(np.eye(4) * np.exp(logvar)[..., None, :], jnp.float32)
        f32 = lambda a: jnp.asarray(a, jnp.float32)
        np.testing.assert_allclose(kl_mvn(f32(mean_q), diag(logvar_q), jnp.zeros(4), jnp.eye(4)),
                                   kl_std_normal(f32(mean_q), f32(logvar_q)), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(kl_mvn(f32(mean_q), diag(logvar_q), f32(mean_p), diag(logvar_p)),
                                   kl_diag_normal(f32(mean_q), f32(logvar_q), f32(mean_p), f32(logvar_p)),
                                   rtol=1e-5, atol=1e-5)

    def test_zero_iff_equal(self):
        rng = np.random.default_rng(3)
        mean, cov = jnp.asarray(rng.normal(size=4), jnp.float32), jnp.asarray(random_spd(rng, 4), jnp.float32)
        self.assertLess(abs(float(kl_mvn(mean, cov, mean, cov))), 1e-5)
        self.assertGreater(float(kl_mvn(mean, cov, mean + 0.05, cov)), 1e-4)
        self.assertGreater(float(kl_mvn(mean, cov, mean, 1.1 * cov)), 1e-4)


class KlDiagonalTest(chex.TestCase):

    def test_std_normal_matches_notes_formula_and_monte_carlo(self):
        rng = np.random.default_rng(4)
        mean, logvar = rng.normal(size=3), rng.normal(size=3)
        notes = 0.5 * np.sum(np.exp(logvar) + mean ** 2 - 1 - logvar)  # the notes' div_KL line
        np.testing.assert_allclose(kl_std_normal(jnp.asarray(mean), jnp.asarray(logvar)), notes, rtol=1e-6)
        estimate, standard_error = monte_carlo_kl(rng, mean, np.diag(np.exp(logvar)), np.zeros(3), np.eye(3))
        assert abs(notes - estimate) < 5 * standard_error

    def test_diag_matches_monte_carlo(self):
        rng = np.random.default_rng(5)
        mean_q, logvar_q, mean_p, logvar_p = rng.normal(size=(4, 3))
        closed_form = float(kl_diag_normal(*(jnp.asarray(a) for a in (mean_q, logvar_q, mean_p, logvar_p))))
        estimate, standard_error = monte_carlo_kl(rng, mean_q, np.diag(np.exp(logvar_q)), mean_p,
                                                  np.diag(np.exp(logvar_p)))
        assert abs(closed_form - estimate) < 5 * standard_error

    @chex.variants(with_jit=True, without_jit=True)
    def test_exactly_zero_when_equal_positive_otherwise(self):
        rng = np.random.default_rng(6)
        mean, logvar = jnp.asarray(rng.normal(size=(100, 8)), jnp.float32), jnp.asarray(rng.normal(size=(100, 8)) * 3,
                                                                                      jnp.float32)
        kl_diag, kl_std = self.variant(kl_diag_normal), self.variant(kl_std_normal)
        chex.assert_trees_all_equal(kl_diag(mean, logvar, mean, logvar), jnp.zeros(100))
        chex.assert_trees_all_equal(kl_std(jnp.zeros((3, 8)), jnp.zeros((3, 8))), jnp.zeros(3))
        other_mean = mean + jnp.asarray(rng.normal(size=(100, 8)), jnp.float32)
        other_logvar = logvar + jnp.asarray(rng.normal(size=(100, 8)), jnp.float32)
        assert bool(jnp.all(kl_diag(mean, logvar, other_mean, other_logvar) > 0))
        assert bool(jnp.all(kl_std(other_mean, other_logvar) > 0))
        # A tiny difference still gives a positive KL (expm1 keeps the precision exp - 1 would lose).
        tiny = kl_diag(mean, logvar, mean, logvar + 1e-3)
        assert bool(jnp.all(tiny > 0)), tiny
        np.testing.assert_allclose(tiny, 8 * 0.5 * (1e-3) ** 2 / 2, rtol=2e-2)

    @chex.variants(with_jit=True, without_jit=True)
    def test_finite_values_and_gradients_at_extremes(self):
        # float32 holds exp(t) for t < 88.7: log-variances (and their differences) up to +-80.
        logvar = jnp.array([[-80.0, -30.0, 0.0, 30.0, 80.0]])
        mean = jnp.array([[1e4, -1e4, 0.0, 1e3, -1e3]])
        for fn, args in ((kl_std_normal, (mean, logvar)),
                         (kl_diag_normal, (mean, logvar / 2, -mean, -logvar / 2))):
            value = self.variant(fn)(*args)
            grads = jax.grad(lambda *a: jnp.sum(fn(*a)), argnums=tuple(range(len(args))))(*args)
            chex.assert_tree_all_finite((value, grads))


def test_kl_is_nonnegative_on_random_inputs():
    rng = np.random.default_rng(8)
    for _ in range(20):
        dim = int(rng.integers(1, 6))
        args = [jnp.asarray(a, jnp.float32) for a in (rng.normal(size=dim), random_spd(rng, dim, 100.0),
                                                      rng.normal(size=dim), random_spd(rng, dim, 100.0))]
        assert float(kl_mvn(*args)) >= -1e-5
        assert float(kl_diag_normal(*(jnp.asarray(rng.normal(size=(4, dim)) * 2, jnp.float32)))) >= 0.0


def test_kl_mvn_rejects_non_positive_definite_with_nan():
    # Cholesky of an indefinite matrix yields NaN: the KL is undefined, and it must not look valid.
    value = kl_mvn(jnp.zeros(2), jnp.array([[1.0, 2.0], [2.0, 1.0]]), jnp.zeros(2), jnp.eye(2))
    assert np.isnan(float(value))

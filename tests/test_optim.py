"""Kim's max-norm as an optax transformation (vaecnn.optim.max_norm_constraint), and the optimizers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vaecnn.errors import ConfigError
from vaecnn.optim import OPTIMIZERS, SCHEDULES, learning_rate_schedule, make_optimizer, max_norm_constraint


def _step(transformation, params, updates):
    new_updates, _ = transformation.update(updates, transformation.init(params), params)
    return optax.apply_updates(params, new_updates)


def test_max_norm_projects_only_the_output_layer():
    kernel = np.zeros((4, 3), np.float32)
    kernel[:, 0] = [3.0, 4.0, 0.0, 0.0]  # norm 5 > 3 -> rescaled to 3
    kernel[:, 1] = [1.0, 1.0, 1.0, 0.0]  # norm sqrt(3) < 3 -> untouched
    kernel[:, 2] = [0.0, 0.0, 0.0, 3.0]  # norm exactly 3 -> untouched
    conv_kernel = 10.0 * np.ones((2, 3, 4), np.float32)
    params = {
        "convs_0": {"kernel": jnp.asarray(conv_kernel), "bias": jnp.ones(4)},
        "dense": {"kernel": jnp.asarray(kernel), "bias": 100.0 * jnp.ones(3)},
    }
    project = jax.jit(lambda params: _step(max_norm_constraint(3.0), params, jax.tree.map(jnp.zeros_like, params)))
    out = project(params)
    k = np.asarray(out["dense"]["kernel"])
    np.testing.assert_allclose(np.linalg.norm(k[:, 0]), 3.0, rtol=1e-6)
    np.testing.assert_allclose(k[:, 0], kernel[:, 0] * 3.0 / 5.0, rtol=1e-6)
    np.testing.assert_array_equal(k[:, 1:], kernel[:, 1:])
    # Nothing else is touched (biases, conv kernels even though their norms exceed s).
    np.testing.assert_array_equal(np.asarray(out["dense"]["bias"]), 100.0)
    np.testing.assert_array_equal(np.asarray(out["convs_0"]["kernel"]), conv_kernel)
    # Input not mutated; a {"params": ...} variables dict is accepted too.
    np.testing.assert_array_equal(np.asarray(params["dense"]["kernel"]), kernel)
    wrapped = project({"params": params})
    np.testing.assert_allclose(np.asarray(wrapped["params"]["dense"]["kernel"]), k, rtol=1e-6)
    with pytest.raises(KeyError):
        project({"convs_0": params["convs_0"]})


def test_max_norm_constraint_transform():
    params = {
        "convs_0": {"kernel": jnp.ones((2, 3, 4)), "bias": jnp.zeros(4)},
        "dense": {"kernel": jnp.zeros((4, 2)), "bias": jnp.zeros(2)},
    }
    grads = {
        "convs_0": {"kernel": jnp.ones((2, 3, 4)), "bias": jnp.ones(4)},
        "dense": {"kernel": jnp.array([[-10.0, -0.1]] * 4), "bias": jnp.ones(2)},
    }
    opt = optax.chain(optax.sgd(1.0), max_norm_constraint(3.0))

    @jax.jit
    def step(params, grads):
        updates, _ = opt.update(grads, opt.init(params), params)
        return optax.apply_updates(params, updates)

    new = step(params, grads)
    # The column within the norm took exactly the optimizer's step, bit for bit.
    np.testing.assert_array_equal(np.asarray(new["dense"]["kernel"][:, 1]),
                                  np.asarray(params["dense"]["kernel"][:, 1] - grads["dense"]["kernel"][:, 1]))
    norms = np.linalg.norm(np.asarray(new["dense"]["kernel"]), axis=0)
    np.testing.assert_allclose(norms, [3.0, 0.2], rtol=1e-6)  # 20 -> 3; 0.2 untouched
    np.testing.assert_allclose(np.asarray(new["convs_0"]["kernel"]), 0.0)
    np.testing.assert_allclose(np.asarray(new["dense"]["bias"]), -1.0)



@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_optimizer_and_schedule_moves_the_parameters_downhill(name, schedule):
    params = {"w": jnp.ones((3, 2))}
    optimizer = make_optimizer(name, 0.1, total_steps=10, schedule=schedule, warmup_steps=2, clip_norm=1.0)
    state = optimizer.init(params)
    for _ in range(3):  # past the warm-up, whose first step has a learning rate of 0
        updates, state = optimizer.update({"w": jnp.full((3, 2), 5.0)}, state, params)
        params = optax.apply_updates(params, updates)
    w = np.asarray(params["w"])
    assert np.all(np.isfinite(w)) and np.all(w < 1.0), w  # a positive gradient lowers every weight


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [0.1, 0.1, 0.1, 0.1]),
    ("cosine", [0.1, 0.1 * (1 + np.cos(np.pi * 2 / 10)) / 2, 0.05, 0.0]),
    # linear warm-up over 2 steps from 0, then cosine decay over the remaining 8 to 0
    ("warmup_cosine", [0.0, 0.1, 0.1 * (1 + np.cos(np.pi * 3 / 8)) / 2, 0.0]),
])
def test_schedules_take_their_values(schedule, expected):
    lr = learning_rate_schedule(0.1, total_steps=10, schedule=schedule, warmup_steps=2)
    np.testing.assert_allclose([float(lr(step)) for step in (0, 2, 5, 10)], expected, rtol=1e-6, atol=1e-9)


def test_bad_optimizer_settings_are_config_errors():
    with pytest.raises(ConfigError, match="positive"):
        make_optimizer("adam", 0.0, total_steps=1)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        make_optimizer("lion", 1e-3, total_steps=1)

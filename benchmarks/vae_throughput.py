r"""Training throughput of the MNIST VAE: the project's jitted step against PyTorch, same run.

    ./launch.sh bench vae_throughput        (writes benchmarks/results/vae_throughput.{json,png})

Both sides train the same model on the same batch: MLP encoder 784-512-256-(32 mean, 32 logvar),
one reparameterized sample, MLP decoder 32-256-512-784 Bernoulli logits, loss = mean(BCE + KL to
N(0, I)), Adam at a constant 3e-3 (the preset's peak learning_rate, configs/vae_mnist.py, on both
sides; the preset's warm-up and cosine schedule are left out), dynamic binarization of the uint8 batch
inside the step. The JAX side is vaecnn.engine.make_train_step on vaecnn.recipes.vae.VAETask, i.e. the
step `experiments.vae_mnist` runs.

The step is dominated by matrix products, so the JSON also gives a roofline: the step's matrix-product
FLOPs per example (counted from the layer sizes, and XLA's own count of the compiled step), each side's
achieved GFLOP/s, and the GFLOP/s each framework reaches on the step's largest product alone (B x 784
times 784 x 512, best of several timed loops); that rate over the FLOPs per example bounds the
examples/s any implementation of this step can reach on the machine.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from benchmarks import _harness
from benchmarks._harness import torch
from benchmarks._torch_vae import TorchVAE
from experiments import _cli
from vaecnn.optim import make_optimizer
from configs import vae_mnist
from vaecnn.recipes.vae import make_task

FLAGS = flags.FLAGS
_DEFAULTS = vae_mnist.get_config()  # the experiment's own preset
_harness.define_flags("vae_throughput", warmup_steps=10, steps=50)
flags.DEFINE_integer("batch_size", _DEFAULTS.train.batch_size, "Examples per step.", lower_bound=1)

IMAGE_SHAPE = (28, 28, 1)


def torch_runner(images: np.ndarray) -> _harness.Runner:
    """The PyTorch reference (benchmarks/_torch_vae.py), binarizing inside the step as the JAX side does."""
    torch.manual_seed(0)
    model = TorchVAE(_DEFAULTS.hidden_sizes, _DEFAULTS.latent_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=_DEFAULTS.learning_rate)
    batch = torch.from_numpy(images)
    loss = lambda: model.negative_elbo(torch.bernoulli(batch.float().flatten(1) / 255.0)).mean()
    return _harness.torch_runner(optimizer, loss)


def dense_layers(input_dim: int, hidden_sizes, latent_dim: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every dense layer: encoder, the mean and logvar heads, decoder."""
    encoder = [input_dim, *hidden_sizes]
    decoder = [latent_dim, *reversed(hidden_sizes), input_dim]
    return [*zip(encoder, encoder[1:]), (hidden_sizes[-1], latent_dim), (hidden_sizes[-1], latent_dim),
            *zip(decoder, decoder[1:])]


def train_matmul_flops_per_example(layers: list[tuple[int, int]]) -> int:
    """2 FLOPs per multiply-add, for each layer's forward product and weight gradient, and for the
    input gradient of every layer but the first (its input is the data)."""
    return 2 * (sum(2 * fan_in * fan_out for fan_in, fan_out in layers)
                + sum(fan_in * fan_out for fan_in, fan_out in layers[1:]))


def _best_seconds(run, calls: int = 200, loops: int = 7) -> float:
    best = float("inf")
    for _ in range(loops):
        start = time.perf_counter()
        run(calls)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def gemm_gflops(batch_size: int, fan_in: int, fan_out: int) -> dict[str, float]:
    """GFLOP/s of a (batch x fan_in) @ (fan_in x fan_out) float32 product, in JAX and in PyTorch."""
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((batch_size, fan_in), dtype=np.float32)
    b_np = rng.standard_normal((fan_in, fan_out), dtype=np.float32)
    a, b = jax.device_put(a_np), jax.device_put(b_np)
    product = jax.jit(jnp.matmul)
    jax.block_until_ready(product(a, b))

    def jax_loop(n):
        for _ in range(n):
            out = product(a, b)
        jax.block_until_ready(out)

    a_t, b_t = torch.from_numpy(a_np), torch.from_numpy(b_np)

    def torch_loop(n):
        for _ in range(n):
            torch.matmul(a_t, b_t)

    flops = 2 * batch_size * fan_in * fan_out
    return {side: flops / _best_seconds(loop) / 1e9 for side, loop in (("jax", jax_loop), ("torch", torch_loop))}


def roofline(results: dict, step_flops_xla: float) -> dict:
    """The step's FLOPs, each side's achieved GFLOP/s, and the largest product's rate as a ceiling."""
    layers = dense_layers(int(np.prod(IMAGE_SHAPE)), _DEFAULTS.hidden_sizes, _DEFAULTS.latent_dim)
    per_example = train_matmul_flops_per_example(layers)
    largest = max(layers, key=lambda layer: layer[0] * layer[1])
    peak = gemm_gflops(FLAGS.batch_size, *largest)
    best_peak = max(peak.values())
    return {
        "matmul_flops_per_example": per_example,
        "xla_flops_per_example": step_flops_xla / FLAGS.batch_size,
        "achieved_gflops": {side: results[side]["examples_per_second"] * per_example / 1e9
                            for side in ("jax", "torch")},
        "largest_product": f"({FLAGS.batch_size} x {largest[0]}) @ ({largest[0]} x {largest[1]})",
        "largest_product_gflops": peak,
        "ceiling_examples_per_second": best_peak * 1e9 / per_example,
    }


def main(argv):
    del argv
    _harness.configure_torch()
    images = np.random.default_rng(0).integers(0, 256, (FLAGS.batch_size, *IMAGE_SHAPE), dtype=np.uint8)
    task = make_task(_DEFAULTS, IMAGE_SHAPE)
    optimizer = make_optimizer("adam", _DEFAULTS.learning_rate, total_steps=1)
    batch = {"image": images, "mask": np.ones(FLAGS.batch_size, np.float32)}
    sides = {"jax": _harness.jax_runner(task, optimizer, batch), "torch": torch_runner(images)}
    step_flops_xla = _harness.jax_step_flops(task, optimizer, batch)
    results = _harness.run_and_write(
        sides, FLAGS.batch_size,
        "MNIST VAE training step (binarize, encode, sample, decode, BCE + KL, backward, Adam), examples/s",
        {"hidden_sizes": list(_DEFAULTS.hidden_sizes), "latent_dim": _DEFAULTS.latent_dim,
         "batch_size": FLAGS.batch_size, "optimizer": f"adam({_DEFAULTS.learning_rate})"},
        annotate=lambda timed: {"roofline": roofline(timed, step_flops_xla)})
    bound = results["roofline"]
    print(f"roofline: {bound['matmul_flops_per_example'] / 1e6:.2f} MFLOP per example in matrix products; "
          f"achieved {bound['achieved_gflops']['jax']:.0f} (JAX) and {bound['achieved_gflops']['torch']:.0f} "
          f"(PyTorch) GFLOP/s; the largest product alone runs at {bound['largest_product_gflops']['jax']:.0f} "
          f"(JAX) / {bound['largest_product_gflops']['torch']:.0f} (PyTorch) GFLOP/s, a ceiling of "
          f"{bound['ceiling_examples_per_second']:.0f} examples/s")

if __name__ == "__main__":
    _cli.run(main)

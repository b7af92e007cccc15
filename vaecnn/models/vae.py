"""The variational autoencoder of the notes, as flax.linen modules.

The notes' pseudo-code, which `VAE.__call__` follows:
    mu, logvar = encode(x)                   logvar = log sigma^2
    z = sample_latent_space(mu, logvar)      reparameterization trick
    x_tilde = decode(z)
    div_KL = 1/2 sum_D exp(logvar) + mu^2 - 1 - logvar
    reconstruction_loss = Fn_loss(x, x_tilde)  Bernoulli (BCE) or Gaussian (MSE)
    loss = mean(reconstruction_loss + div_KL)
    return x_tilde, loss
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax

from vaecnn import objectives
from vaecnn.likelihoods import bernoulli_log_prob, gaussian_log_prob
from vaecnn.models.conv import Conv, ConvTranspose

LIKELIHOODS = ("bernoulli", "gaussian")
ARCHS = ("mlp", "conv")
# The hidden layers' nonlinearity: ReLU by default; tanh is Burda et al.'s (2015) 784-200-200-50 network.
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh}


class MLPEncoder(nn.Module):
    """q(z|x) = N(mean, diag(exp(logvar))): flatten, MLP (ReLU or tanh), two linear heads."""
    hidden_sizes: Sequence[int]
    latent_dim: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array]:
        h_BxF = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
        for size in self.hidden_sizes:
            h_BxF = ACTIVATIONS[self.activation](nn.Dense(size)(h_BxF))
        mean_BxZ = nn.Dense(self.latent_dim, name="mean")(h_BxF)
        logvar_BxZ = nn.Dense(self.latent_dim, name="logvar")(h_BxF)
        return mean_BxZ, logvar_BxZ


class MLPDecoder(nn.Module):
    """z -> one output per pixel (Bernoulli logits or Gaussian means), over any leading axes."""
    hidden_sizes: Sequence[int]
    output_shape: Sequence[int]  # (H, W, C)
    activation: str = "relu"

    @nn.compact
    def __call__(self, z_NxZ: jax.Array) -> jax.Array:
        # The leading axes (samples x batch) folded into one: on [S, B, Z] a dense layer's weight gradient
        # contracts two axes, which XLA:CPU computes through transposing copies; on [S * B, Z] every
        # product is a plain matrix product (benchmarks/results/vae_step_profile.md; the sums may round
        # differently in their last bits).
        h_MxF = z_NxZ.reshape(-1, z_NxZ.shape[-1])
        for size in self.hidden_sizes:
            h_MxF = ACTIVATIONS[self.activation](nn.Dense(size)(h_MxF))
        out_MxP = nn.Dense(math.prod(self.output_shape), name="pixels")(h_MxF)
        return out_MxP.reshape(z_NxZ.shape[:-1] + tuple(self.output_shape))


class ConvEncoder(nn.Module):
    """q(z|x): [Conv 3x3 stride 2 SAME (f) -> ReLU] for f in features, then MLPEncoder's layers.

    Each stride-2 convolution halves H and W (rounding up): 28x28x1 -> 14x14x32 -> 7x7x64 with
    features (32, 64), flattened to 3,136 features for the dense layers.
    """
    features: Sequence[int]
    hidden_sizes: Sequence[int]
    latent_dim: int
    activation: str = "relu"  # of the dense layers

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array]:
        h_BxHxWxF = x_BxHxWxC
        for size in self.features:
            h_BxHxWxF = nn.relu(Conv(size, (3, 3), strides=(2, 2), padding="SAME")(h_BxHxWxF))
        return MLPEncoder(self.hidden_sizes, self.latent_dim, self.activation)(h_BxHxWxF)


class ConvDecoder(nn.Module):
    """z -> MLPDecoder's layers onto an (H/2^L) x (W/2^L) x features[-1] map -> ReLU ->
    [ConvTranspose 3x3 stride 2 SAME] over reversed features[:-1], then one to the image's C channels
    (one output per pixel, as MLPDecoder), over any leading axes.

    The mirror of ConvEncoder with L = len(features) stride-2 layers, so H and W must be divisible by
    2^L (MNIST's 28 and digits' 8 are, for L = 2): 7x7x64 -> 14x14x32 -> 28x28x1.
    """
    features: Sequence[int]
    hidden_sizes: Sequence[int]
    output_shape: Sequence[int]  # (H, W, C)
    activation: str = "relu"  # of the dense layers

    @nn.compact
    def __call__(self, z_NxZ: jax.Array) -> jax.Array:
        height, width, channels = self.output_shape
        stride = 2 ** len(self.features)
        if height % stride or width % stride:
            raise ValueError(f"the conv decoder's {len(self.features)} stride-2 layers need H and W divisible "
                             f"by {stride}, got {height}x{width}")
        seed_shape = (height // stride, width // stride, self.features[-1])
        # Convolutions take one batch axis: fold the leading axes (samples x batch) into it.
        h_MxHxWxF = nn.relu(MLPDecoder(self.hidden_sizes, seed_shape, self.activation)(z_NxZ)).reshape((-1,) + seed_shape)
        # Named as the nn.ConvTranspose layers these compute, so parameter trees and checkpoints keep their names.
        for index, size in enumerate(reversed(self.features[:-1])):
            h_MxHxWxF = nn.relu(ConvTranspose(size, (3, 3), (2, 2), name=f"ConvTranspose_{index}")(h_MxHxWxF))
        out = ConvTranspose(channels, (3, 3), (2, 2), name="pixels")(h_MxHxWxF)
        return out.reshape(z_NxZ.shape[:-1] + tuple(self.output_shape))


class VAE(nn.Module):
    """Encoder, decoder and observation model p(x|z).

    likelihood: 'bernoulli' (decoder outputs logits; x in [0, 1]) or 'gaussian' (decoder outputs
    means; variance exp(gaussian_logvar) fixed, or a learned per-pixel log-variance when
    gaussian_logvar is None).
    """
    encoder: nn.Module
    decoder: nn.Module
    likelihood: str = "bernoulli"
    gaussian_logvar: float | None = 0.0

    def setup(self):
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.likelihood == "gaussian" and self.gaussian_logvar is None:
            self.pixel_logvar = self.param("pixel_logvar", nn.initializers.zeros,
                                           tuple(self.decoder.output_shape))

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.encoder(x)

    def decode(self, z: jax.Array) -> jax.Array:
        """Decoder outputs: Bernoulli logits or Gaussian means, [..., H, W, C]."""
        return self.decoder(z)

    def log_likelihood(self, x_BxHxWxC: jax.Array, z_SxBxZ: jax.Array) -> jax.Array:
        """log p(x|z) for each sample: [S, B] nats."""
        outputs_SxBxHxWxC = self.decode(z_SxBxZ)
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x_BxHxWxC, outputs_SxBxHxWxC, event_ndims=3)
        logvar = self.pixel_logvar if self.gaussian_logvar is None else self.gaussian_logvar
        return gaussian_log_prob(x_BxHxWxC, outputs_SxBxHxWxC, logvar, event_ndims=3)

    def log_importance_weights(self, x: jax.Array, key: jax.Array, num_samples: int) -> jax.Array:
        """log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x), z_s ~ q(z|x): [S, B] nats."""
        return objectives.log_importance_weights(key, x, self.encode, self.log_likelihood, num_samples)

    def mean_image(self, z: jax.Array) -> jax.Array:
        """E[x|z] in [0, 1]-ish pixel space, for pictures."""
        outputs = self.decode(z)
        return jax.nn.sigmoid(outputs) if self.likelihood == "bernoulli" else outputs

    def reconstruct(self, x: jax.Array) -> jax.Array:
        """The mean image decoded from the posterior mean: x -> E[x | z = mu(x)]."""
        return self.mean_image(self.encode(x)[0])

    def __call__(self, x: jax.Array, key: jax.Array,
                 num_samples: int = 1) -> tuple[jax.Array, objectives.ElboTerms]:
        """The notes' forward pass: returns (x_tilde, ElboTerms); loss = mean(-terms.elbo).

        x_tilde is the decoder's mean image at the posterior mean z = mu (the reconstruction one
        looks at); the ELBO averages `num_samples` reparameterized samples.
        """
        terms = objectives.elbo(key, x, self.encode, self.log_likelihood, num_samples)
        return self.reconstruct(x), terms


def make_vae(image_shape: Sequence[int], hidden_sizes: Sequence[int], latent_dim: int,
             likelihood: str = "bernoulli", gaussian_logvar: float | None = 0.0, arch: str = "mlp",
             conv_features: Sequence[int] = (32, 64), activation: str = "relu") -> VAE:
    """An MLP or convolutional VAE; the decoder mirrors the encoder (hidden sizes and conv features).
    `activation` (relu or tanh) is the dense hidden layers' nonlinearity; the conv layers keep ReLU."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
    decoder_sizes = tuple(reversed(hidden_sizes))
    if arch == "mlp":
        encoder = MLPEncoder(tuple(hidden_sizes), latent_dim, activation)
        decoder = MLPDecoder(decoder_sizes, tuple(image_shape), activation)
    elif arch == "conv":
        encoder = ConvEncoder(tuple(conv_features), tuple(hidden_sizes), latent_dim, activation)
        decoder = ConvDecoder(tuple(conv_features), decoder_sizes, tuple(image_shape), activation)
    else:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    return VAE(encoder=encoder, decoder=decoder, likelihood=likelihood, gaussian_logvar=gaussian_logvar)

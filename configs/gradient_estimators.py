"""docs/results.md, "Gradient estimators": the variance of score-function and reparameterization gradients after epochs
1, 3 and 10 of a VAE (Adam 1e-3, batch 128, constant rate)."""

from vaecnn.recipes.gradient_estimators import GradientEstimatorsConfig


def get_config() -> GradientEstimatorsConfig:
    return GradientEstimatorsConfig()

"""vaecnn: VAEs, Elman RNNs and sequence CNNs in JAX/Flax, from the course notes to measured results.

The math is importable from the top level; models, data, training and recipes live in submodules.
"""

from vaecnn.kl import kl_diag_normal, kl_mvn, kl_std_normal
from vaecnn.likelihoods import bernoulli_log_prob, gaussian_log_prob
from vaecnn.objectives import (ElboTerms, elbo, importance_weighted_log_likelihood, iwae_bound,
                               log_importance_weights, reparameterize)

__all__ = [
    "ElboTerms", "bernoulli_log_prob", "elbo", "gaussian_log_prob", "importance_weighted_log_likelihood",
    "iwae_bound", "kl_diag_normal", "kl_mvn", "kl_std_normal", "log_importance_weights", "reparameterize",
]

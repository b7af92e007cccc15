"""flax.linen models: the VAE, the Elman RNN classifier, the Kim text CNN."""

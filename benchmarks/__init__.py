"""Throughput of each model against a PyTorch implementation of the same model: python -m benchmarks.<name>."""

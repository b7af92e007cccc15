"""Recipes: a typed config and a run() per experiment, glueing data, model, train loop and outputs."""

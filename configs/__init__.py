"""Named presets: one module per results row of docs/results.md (and one per experiment's defaults).

Each module's get_config() returns a typed config of vaecnn.recipes; an experiment starts from one
with --config=<module> (its default preset when left out) and any flag overrides a field:

    ./launch.sh vae_mnist --config=vae_mnist_iw --epochs=10
"""

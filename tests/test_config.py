"""Typed configs (vaecnn.config), the presets of configs/, and --config on the command line."""

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys

import pytest

import configs
from vaecnn import config as vconfig
from vaecnn.errors import ConfigError
from vaecnn.models.rnn import RNNConfig
from vaecnn.models.text_cnn import CNNConfig
from vaecnn.recipes.gradient_estimators import GradientEstimatorsConfig
from vaecnn.recipes.image_classifier import ImageClassifierConfig
from vaecnn.recipes.text_classifier import TextClassifierConfig, make_config
from vaecnn.recipes.vae import VAEConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = sorted(module.name for module in pkgutil.iter_modules(configs.__path__))
CONFIG_TYPES = (VAEConfig, TextClassifierConfig, ImageClassifierConfig, GradientEstimatorsConfig)


def vae(**fields) -> VAEConfig:
    return vconfig.override(VAEConfig(), fields)


def test_nested_model_fields_are_flat_settings():
    settings = vconfig.settings(TextClassifierConfig(model=CNNConfig()))
    assert settings["widths"].path == ("model", "widths") and settings["widths"].default == (3, 4, 5)
    assert settings["epochs"].path == ("train", "epochs") and settings["epochs"].default == 10
    assert "hidden_size" not in settings  # the RNN's fields belong to the other model
    assert set(vconfig.settings(TextClassifierConfig(model=RNNConfig()))) - set(settings) == {
        "hidden_size", "activation"}


def test_override_reaches_nested_fields_and_validates_again():
    base = TextClassifierConfig(model=CNNConfig())
    changed = vconfig.override(base, {"widths": (2,), "channels": (7,), "epochs": 3})
    assert changed.model == CNNConfig(widths=(2,), channels=(7,)) and changed.train.epochs == 3
    assert base.model.widths == (3, 4, 5)  # configs are values: the base is unchanged
    with pytest.raises(ConfigError, match="one positive channel count per positive width"):
        vconfig.override(base, {"widths": (2, 3)})
    with pytest.raises(ConfigError, match="no field hidden_size"):
        vconfig.override(base, {"hidden_size": 8})


@pytest.mark.parametrize("config", [VAEConfig(gaussian_logvar=None, hidden_sizes=(8,)), vae(epochs=3, select_metric="test/kl"),
                                    make_config("cnn", dataset="mr", widths=(1, 2), channels=(3, 4), max_norm=None),
                                    make_config("rnn", train_file="x.tsv", hidden_size=5),
                                    ImageClassifierConfig(model="both", train_examples=10),
                                    GradientEstimatorsConfig(measure_epochs=(1, 2), epochs=2)])
def test_save_and_load_round_trip(config, tmp_path):
    path = vconfig.save(config, str(tmp_path))
    assert json.load(open(path))  # plain JSON, readable by anyone
    assert vconfig.load(type(config), str(tmp_path)) == config


def test_save_keep_existing_leaves_the_file_alone(tmp_path):
    vconfig.save(vae(epochs=2), str(tmp_path))
    before = open(tmp_path / vconfig.CONFIG_FILE, "rb").read()
    vconfig.save(vae(epochs=3), str(tmp_path), keep_existing=True)
    assert open(tmp_path / vconfig.CONFIG_FILE, "rb").read() == before
    vconfig.save(vae(epochs=3), str(tmp_path))
    assert vconfig.load(VAEConfig, str(tmp_path)).train.epochs == 3


def test_a_config_file_of_the_flat_layout_loads_into_the_nested_train_config(tmp_path):
    """Workdirs written before TrainConfig was nested kept its fields at the top level: they still load
    (and so resume), each flat field in its place, the others at the experiment's defaults."""
    flat = {key: value for key, value in vconfig.to_dict(vae(epochs=7, seed=3, latent_dim=2)).items() if key != "train"}
    flat.update(epochs=7, batch_size=256, seed=3, eval_batch_size=1000, steps_per_chunk=100)
    (tmp_path / vconfig.CONFIG_FILE).write_text(json.dumps(flat))
    assert vconfig.load(VAEConfig, str(tmp_path)) == vae(epochs=7, seed=3, latent_dim=2)


def test_damaged_or_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        vconfig.load(VAEConfig, str(tmp_path))
    (tmp_path / vconfig.CONFIG_FILE).write_text('{"epochs": ')
    with pytest.raises(ConfigError, match="damaged"):
        vconfig.load(VAEConfig, str(tmp_path))
    (tmp_path / vconfig.CONFIG_FILE).write_text('{"model": {"kind": "transformer"}}')
    with pytest.raises(ConfigError, match="unknown kind 'transformer'"):
        vconfig.load(TextClassifierConfig, str(tmp_path))


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_a_valid_typed_config(name):
    config = importlib.import_module(f"configs.{name}").get_config()
    assert isinstance(config, CONFIG_TYPES), type(config)
    assert vconfig.from_dict(type(config), json.loads(json.dumps(vconfig.to_dict(config)))) == config


def test_every_preset_named_in_the_readme_exists_and_every_preset_is_named():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("## Experiments and presets"):readme.index("## Data")]
    # the third column of the section's table lists each experiment's presets
    listed = {name for line in section.splitlines() if line.count("|") == 4
              for name in re.findall(r"`(\w+)`", line.split("|")[3])}
    named = listed | set(re.findall(r"--config=(\w+)", readme))
    assert named <= set(PRESETS), sorted(named - set(PRESETS))
    assert set(PRESETS) <= listed, sorted(set(PRESETS) - listed)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_command_line_starts_from_the_preset_and_flags_override_it(tmp_path):
    workdir = tmp_path / "w"
    completed = _run("experiments.vae_mnist", "--config=vae_mnist_latent2", "--dataset=digits", "--epochs=1",
                     "--hidden_sizes=16", f"--workdir={workdir}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    saved = vconfig.load(VAEConfig, str(workdir))
    preset = importlib.import_module("configs.vae_mnist_latent2").get_config()
    assert saved == vconfig.override(preset, dict(dataset="digits", epochs=1, hidden_sizes=(16,), workdir=str(workdir)))
    assert json.load(open(workdir / "results.json"))["config"] == vconfig.to_dict(saved)


@pytest.mark.slow
def test_a_preset_of_another_experiment_is_one_clear_line(tmp_path):
    completed = _run("experiments.vae_mnist", "--config=rnn_mr", f"--workdir={tmp_path}")
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines()[-1].startswith("error: flag --config=rnn_mr: preset rnn_mr "
                                                                "configures another experiment than vae_mnist")


def test_check_resume_names_each_changed_field_and_lets_allowed_ones_through(tmp_path):
    workdir = str(tmp_path)
    vconfig.check_resume(VAEConfig(), workdir)  # nothing saved: a fresh run
    vconfig.save(VAEConfig(workdir=workdir), workdir)
    # Paths and evaluation settings change nothing a checkpoint holds.
    vconfig.check_resume(vae(workdir="elsewhere", eval_iw_samples=5000, steps_per_chunk=7), workdir)
    with pytest.raises(ConfigError, match=r"\(--epochs 30 -> 40, --latent_dim 32 -> 2\): rerun with "
                                          r"--allow_changes=epochs,latent_dim"):
        vconfig.check_resume(vae(epochs=40, latent_dim=2), workdir)
    vconfig.check_resume(vae(epochs=40), workdir, allowed=["epochs"])


def test_check_resume_sees_another_model_kind(tmp_path):
    workdir = str(tmp_path)
    vconfig.save(make_config("rnn", dataset="mr"), workdir)
    with pytest.raises(ConfigError, match=r"--model 'rnn' -> 'cnn'"):
        vconfig.check_resume(make_config("cnn", dataset="mr"), workdir)

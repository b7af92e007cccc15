"""Every experiment and benchmark main, on every bad input a user can give it: exit status 1, one line
`error: ...` that says what to do, no traceback, and every input file left as it was.

Each row runs the real command line in a subprocess, as a user would. Placeholders: {inputs} is a
folder of prepared inputs shared by the rows (hashed before and after each run), {tmp} the row's own
folder.
"""

import glob
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

# Slow: end-to-end runs and subprocesses (./launch.sh test --quick leaves them out). One xdist group: the
# module's trained workdirs are made once, on one worker, for all of its tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bad_inputs")]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOUR_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
OFFLINE_TFDS = {"TFDS_DATA_DIR": "{inputs}/empty_tfds", "VAECNN_DATA_DIR": None}
TORCH_MISSING = "the benchmarks compare against PyTorch, which is not installed"
# absl's log lines ("I1201 21:11:42.776740 140185 file.py:254] ...") may precede the error line.
LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\] ")


def _tiny_lines(count: int) -> str:
    return "".join(f"{i % 2} a {'good' if i % 2 else 'bad'} film number {i}\n" for i in range(count))


def _read_only_folder() -> str | None:
    """A folder on a read-only mount, if this machine has one (containers often mount some)."""
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 3 and "ro" in fields[3].split(",") and os.path.isdir(fields[1]) \
                    and not os.access(fields[1], os.W_OK):
                return fields[1]
    return None


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "empty_tfds").mkdir()
    (folder / "empty_glove").mkdir()
    (folder / "a_file").write_text("a regular file, not a folder\n")
    (folder / "tiny.txt").write_text(_tiny_lines(40))
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (folder / "unlabelled.txt").write_text("a film with no label\nanother one\n")
    (folder / "unknown_labels.txt").write_text("7 a film\n9 another\n")
    (folder / "labels_from_1.txt").write_text("".join(f"{1 + i % 2} a film number {i}\n" for i in range(40)))
    (folder / "bad_header.tsv").write_text("text\tscore\na film\t1\n")
    (folder / "one_long_line.txt").write_text("1 " + " ".join(["good"] * 300_000) + "\n" + _tiny_lines(40))
    mnist = folder / "idx" / "mnist"
    mnist.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (mnist / name).write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")  # a header cut short
    # A trained VAE workdir for other flags, and a copy of it whose every checkpoint is then damaged.
    result = _run("experiments.vae_mnist", ["--dataset=digits", "--epochs=2", "--hidden_sizes=32",
                                            "--latent_dim=2", f"--workdir={folder / 'vae_trained'}"], {})
    assert result.returncode == 0, result.stderr[-2000:]
    shutil.copytree(folder / "vae_trained", folder / "vae_damaged")
    for path in glob.glob(str(folder / "vae_damaged" / "checkpoints" / "*" / "tree" / "ocdbt.process_0" / "d" / "*")):
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0x01
        open(path, "wb").write(data)
    return str(folder)


def _run(module: str, args: list[str], env: dict) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=300)


def _digests(folder: str) -> dict[str, str]:
    digests = {}
    for path in glob.glob(os.path.join(folder, "**", "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                digests[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return digests


TEXT = ["--epochs=1", "--embed_dim=8", "--hidden_size=8"]
VAE = ["--dataset=digits", "--epochs=1", "--hidden_sizes=32", "--latent_dim=2"]
# (id, module, args, environment, what the error line must say)
CASES = [
    # The seven cases of the issue.
    ("vae-offline-no-data-dir", "experiments.vae_mnist", ["--workdir={tmp}/w"], OFFLINE_TFDS,
     r"no local copy of mnist: TFDS has no prepared copy .* Point --data_dir"),
    ("cnn-sentiment-widths-not-integers", "experiments.cnn_sentiment", ["--widths=a,b", "--workdir={tmp}/w"], {},
     r"--widths=a,b: expected comma-separated integers"),
    ("cnn-sentiment-glove-dir-without-files", "experiments.cnn_sentiment",
     ["--embedding=static", "--embed_dim=50", "--glove_dir={inputs}/empty_glove", "--train_file={inputs}/tiny.txt",
      "--workdir={tmp}/w"], {}, r"--glove_dir=.*must be a folder holding glove_6B_50d_emb.npy"),
    ("vae-batch-not-multiple-of-devices", "experiments.vae_mnist", [*VAE, "--batch_size=30", "--workdir={tmp}/w"],
     FOUR_DEVICES, r"--batch_size=30 must be a positive multiple of the 4 devices"),
    ("rnn-batch-not-multiple-of-devices", "experiments.rnn_sentiment",
     [*TEXT, "--batch_size=3", "--train_file={inputs}/tiny.txt", "--workdir={tmp}/w"], FOUR_DEVICES,
     r"--batch_size=3 must be a positive multiple of the 4 devices"),
    ("rnn-one-huge-line-beyond-memory", "experiments.rnn_sentiment",
     [*TEXT, "--max_len=300000", "--batch_size=200", "--embed_dim=512", "--hidden_size=512",
      "--train_file={inputs}/one_long_line.txt", "--workdir={tmp}/w"], {},
     r"one (training|evaluation) step on the largest batch \(tokens \d+x300000\) needs .* GiB but .* GiB are free"),
    ("vae-workdir-under-a-file", "experiments.vae_mnist", [*VAE, "--workdir={inputs}/a_file/w"], {},
     r"cannot be created: .*a_file is a file, not a folder"),
    ("vae-workdir-read-only", "experiments.vae_mnist", [*VAE, "--workdir={read_only}/w"], {},
     r"cannot be written: .* is read-only"),
    ("vae-every-checkpoint-damaged", "experiments.vae_mnist",
     [*VAE, "--epochs=3", "--allow_changes=epochs", "--workdir={inputs}/vae_damaged"],
     {}, r"every checkpoint in .* is damaged \(epochs 2, 1\)"),
    # The cases that already ended well: they stay so.
    ("vae-resume-with-other-model-flags", "experiments.vae_mnist",
     ["--dataset=digits", "--epochs=3", "--hidden_sizes=16", "--latent_dim=2", "--workdir={inputs}/vae_trained"], {},
     r"holds a run started with another config \(--epochs 2 -> 3, --hidden_sizes \(32,\) -> \(16,\)\): rerun with "
     r"--allow_changes=epochs,hidden_sizes"),
    ("vae-resume-allowing-other-model-flags", "experiments.vae_mnist",
     ["--dataset=digits", "--epochs=3", "--hidden_sizes=16", "--latent_dim=2", "--allow_changes=epochs,hidden_sizes",
      "--workdir={inputs}/vae_trained"], {}, r"belongs to another model .* other model flags"),
    ("vae-allow-changes-of-no-field", "experiments.vae_mnist", ["--allow_changes=epoch", "--workdir={tmp}/w"], {},
     r"--allow_changes=\['epoch'\]: must name config fields"),
    ("vae-hidden-sizes-not-integers", "experiments.vae_mnist", ["--hidden_sizes=512,x", "--workdir={tmp}/w"], {},
     r"--hidden_sizes=512,x: expected comma-separated integers"),
    ("vae-gaussian-logvar-not-a-number", "experiments.vae_mnist", ["--gaussian_logvar=big", "--workdir={tmp}/w"], {},
     r"--gaussian_logvar=big: must be a finite number or 'learned'"),
    ("vae-missing-data-dir", "experiments.vae_mnist", ["--data_dir={tmp}/nowhere", "--workdir={tmp}/w"], {},
     r"no local copy of mnist: the data folder .* does not exist"),
    ("vae-corrupt-idx", "experiments.vae_mnist", ["--data_dir={inputs}/idx", "--workdir={tmp}/w"], {},
     r"is truncated: its header declares 3 dimensions"),
    ("vae-unknown-dataset", "experiments.vae_mnist", ["--dataset=cifar", "--workdir={tmp}/w"], {},
     r"--dataset=cifar: value should be one of"),
    ("vae-unknown-flag", "experiments.vae_mnist", ["--epochz=3", "--workdir={tmp}/w"], {},
     r"Unknown command line flag 'epochz'"),
    ("rnn-labels-numbered-from-1", "experiments.rnn_sentiment",
     [*TEXT, "--train_file={inputs}/labels_from_1.txt", "--workdir={tmp}/w"], {},
     r"labels_from_1.txt: the classes run 0\.\.2 but no training example has class 0; number the labels 0, 1, "
     r"\.\.\. with every class present \(the labels seen: 1, 2\)"),
    ("vae-unknown-preset", "experiments.vae_mnist", ["--config=nope", "--workdir={tmp}/w"], {},
     r"--config=nope: no preset configs/nope.py; known: .*vae_mnist_iw"),
    ("vae-positional-argument", "experiments.vae_mnist", ["mnist", "--workdir={tmp}/w"], {},
     r"unexpected arguments \['mnist'\]"),
    ("cnn-mnist-features-not-integers", "experiments.cnn_mnist", ["--cnn_features=32,wide", "--workdir={tmp}/w"], {},
     r"--cnn_features=32,wide: expected comma-separated integers"),
    ("cnn-mnist-unknown-model", "experiments.cnn_mnist", ["--model=resnet", "--workdir={tmp}/w"], {},
     r"--model=resnet: value should be one of"),
    ("cnn-mnist-workdir-under-a-file", "experiments.cnn_mnist", ["--workdir={inputs}/a_file/w"], {},
     r"a_file is a file, not a folder"),
    ("cnn-mnist-offline-no-data-dir", "experiments.cnn_mnist", ["--epochs=1", "--workdir={tmp}/w"], OFFLINE_TFDS,
     r"no local copy of mnist: .*--data_dir"),
    ("rnn-missing-train-file", "experiments.rnn_sentiment", [*TEXT, "--train_file={tmp}/none.txt", "--workdir={tmp}/w"],
     {}, r"none.txt: no such file"),
    ("rnn-empty-train-file", "experiments.rnn_sentiment", [*TEXT, "--train_file={inputs}/empty.txt", "--workdir={tmp}/w"],
     {}, r"empty.txt: no usable example"),
    ("rnn-binary-train-file", "experiments.rnn_sentiment",
     [*TEXT, "--train_file={inputs}/binary.txt", "--workdir={tmp}/w"], {}, r"binary.txt: no usable example"),
    ("rnn-unlabelled-train-file", "experiments.rnn_sentiment",
     [*TEXT, "--train_file={inputs}/unlabelled.txt", "--workdir={tmp}/w"], {}, r"unlabelled.txt: no usable example"),
    ("rnn-unknown-labels-in-dev-file", "experiments.rnn_sentiment",
     [*TEXT, "--train_file={inputs}/tiny.txt", "--dev_file={inputs}/unknown_labels.txt", "--workdir={tmp}/w"], {},
     r"unknown_labels.txt: no usable example"),
    ("rnn-bad-tsv-header", "experiments.rnn_sentiment",
     [*TEXT, "--train_file={inputs}/bad_header.tsv", "--workdir={tmp}/w"], {}, r"has no 'sentence' and 'label' columns"),
    ("rnn-unknown-dataset", "experiments.rnn_sentiment", [*TEXT, "--dataset=imdb", "--workdir={tmp}/w"], {},
     r"unknown text data set 'imdb'"),
    ("rnn-max-len-zero", "experiments.rnn_sentiment", [*TEXT, "--max_len=0", "--workdir={tmp}/w"], {},
     r"--max_len=0: 0 is not a positive integer"),
    ("rnn-dev-file-without-train-file", "experiments.rnn_sentiment",
     [*TEXT, "--dev_file={inputs}/tiny.txt", "--workdir={tmp}/w"], {}, r"--dev_file and --test_file need --train_file"),
    ("rnn-predict-untrained-workdir", "experiments.rnn_sentiment", ["--predict=a film", "--workdir={tmp}"], {},
     r"no trained classifier in"),
    ("rnn-workdir-under-a-file", "experiments.rnn_sentiment",
     [*TEXT, "--train_file={inputs}/tiny.txt", "--workdir={inputs}/a_file/w"], {}, r"a_file is a file, not a folder"),
    ("rnn-tfds-offline", "experiments.rnn_sentiment",
     [*TEXT, "--dataset=tfds:glue/sst2", "--data_dir={inputs}/empty_tfds", "--workdir={tmp}/w"], {},
     r"no local copy of glue/sst2: .*Point --data_dir"),
    ("cnn-sentiment-workdir-under-a-file", "experiments.cnn_sentiment",
     ["--train_file={inputs}/tiny.txt", "--workdir={inputs}/a_file/w"], {}, r"a_file is a file, not a folder"),
    ("gradient-estimators-measure-beyond-epochs", "experiments.gradient_estimators",
     ["--measure_epochs=1,20", "--epochs=10", "--workdir={tmp}/w"], {}, r"every --measure_epochs entry must be <= --epochs"),
    ("gradient-estimators-measure-at-epoch-zero", "experiments.gradient_estimators",
     ["--measure_epochs=0,3", "--workdir={tmp}/w"], {}, r"--measure_epochs=0,3: every entry must be >= 1"),
    ("vae-coordinator-port-out-of-range", "experiments.vae_mnist",
     ["--coordinator_address=10.0.0.1:99999", "--num_processes=2", "--process_id=0", "--workdir={tmp}/w"], {},
     r"--coordinator_address must be host:port with a port in 1-65535"),
    ("vae-hidden-size-zero", "experiments.vae_mnist", ["--hidden_sizes=512,0", "--workdir={tmp}/w"], {},
     r"--hidden_sizes=512,0: every entry must be >= 1"),
    ("gradient-estimators-samples-not-integers", "experiments.gradient_estimators",
     ["--num_samples=1,many", "--workdir={tmp}/w"], {}, r"--num_samples=1,many: expected comma-separated integers"),
    ("gradient-estimators-workdir-under-a-file", "experiments.gradient_estimators",
     ["--workdir={inputs}/a_file/w"], {}, r"a_file is a file, not a folder"),
    ("bench-vae-zero-steps", "benchmarks.vae_throughput", ["--steps=0", "--output={tmp}/v.json"], {},
     r"--steps=0: 0 is not a positive integer"),
    ("bench-rnn-output-under-a-file", "benchmarks.rnn_throughput", ["--output={inputs}/a_file/r.json"], {},
     r"--output=.*: must be a .json path in a folder that can be written"),
    ("bench-cnn-zero-batch", "benchmarks.cnn_throughput", ["--batch_size=0", "--output={tmp}/c.json"], {},
     r"--batch_size=0: 0 is not a positive integer"),
    ("bench-main-job-tree-not-a-checkout", "benchmarks.main_job", ["--trees={inputs}", "--output={tmp}/m.json"], {},
     r"--trees: .* is not a checkout of the project"),
]
COMPARED_WITH_PYTORCH = ("benchmarks.vae_throughput", "benchmarks.rnn_throughput", "benchmarks.cnn_throughput")


@pytest.mark.parametrize("module, args, env, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_line(inputs, tmp_path, module, args, env, expected):
    read_only = _read_only_folder()
    if any("{read_only}" in arg for arg in args) and read_only is None:
        pytest.skip("this machine has no read-only mount to point --workdir at")
    if env is OFFLINE_TFDS or "tfds:" in " ".join(args):
        from vaecnn.data import tfds_source
        if tfds_source.host_reachable(timeout=2):
            pytest.skip("the TFDS download host is reachable from here, so this is not an offline machine")
    if module in COMPARED_WITH_PYTORCH and importlib.util.find_spec("torch") is None:
        expected = TORCH_MISSING  # ./launch.sh bench installs it; without it, that is the one line
    fill = lambda text: text.format(inputs=inputs, tmp=tmp_path, read_only=read_only)
    before = _digests(inputs)
    result = _run(module, [fill(arg) for arg in args], {name: None if value is None else fill(value)
                                                         for name, value in env.items()})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines[-10:]
    assert all(LOG_LINE.match(line) for line in lines[:-1]), [l for l in lines[:-1] if not LOG_LINE.match(l)][:5]
    assert re.search(expected, errors[0]), errors[0]
    assert _digests(inputs) == before, "a failed run changed its input files"
    assert result.stdout == "", result.stdout[-2000:]


def test_long_line_is_truncated_and_counted_by_default(inputs, tmp_path):
    """The bounded default --max_len: the 300,000-word line trains (cut to 1,000 tokens) and is counted."""
    result = _run("experiments.rnn_sentiment", [*TEXT, f"--train_file={inputs}/one_long_line.txt",
                                                "--cv_folds=2", f"--workdir={tmp_path}"], {})
    assert result.returncode == 0, result.stderr[-3000:]
    cut = [int(n) for n in re.findall(r"fold_0\d/(?:train|dev|test): \d+ examples \((\d+) cut to --max_len=1000 tokens",
                                      result.stderr)]
    assert len(cut) == 6 and sum(cut) == 2, cut  # 2 folds x train, dev, test; the line is in one of each fold's
    import json
    results = json.load(open(tmp_path / "results.json"))
    assert results["config"]["max_len"] == 1000 and np.isfinite(results["cv_accuracy_mean"])
    assert "truncated" in results["data"]

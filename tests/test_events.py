"""TensorBoard event files: read back with the event protocol buffer, independently of the writer."""

import glob
import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vaecnn import events as vevents

pytestmark = pytest.mark.xdist_group("events")  # the module's trained run is made once, on one worker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_events(workdir: str) -> list:
    """Every Event of every event file in `workdir` (TFRecord framing: length, crc, data, crc), each
    checksum checked with tensorboardX's CRC-32C, each Event parsed with its protocol buffer."""
    # Imported here: tensorboardX imports PyTorch where it is installed (the benchmarks' extra), seconds
    # that every test worker would otherwise spend collecting this module.
    from tensorboardX.proto import event_pb2
    from tensorboardX.record_writer import masked_crc32c
    events = []
    for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
        data = open(path, "rb").read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            (length_crc,) = struct.unpack("<I", data[offset + 8:offset + 12])
            record = data[offset + 12:offset + 12 + length]
            (record_crc,) = struct.unpack("<I", data[offset + 12 + length:offset + 16 + length])
            assert length_crc == masked_crc32c(data[offset:offset + 8]) and record_crc == masked_crc32c(record)
            events.append(event_pb2.Event.FromString(record))
            offset += 16 + length
    assert events[0].file_version == "brain.Event:2"
    return events


def test_the_writer_s_records_parse_as_tensorboard_events(tmp_path):
    writer = vevents.EventWriter(str(tmp_path))
    writer.text("config", "{\n  \"lr\": 0.001\n}")
    assert not os.listdir(tmp_path)  # a text alone creates no file
    writer.scalars({"test/neg_elbo": 94.3125, "epoch_seconds": 2.5, "flag": True, "nan": float("nan"),
                    "train/grad_norm": 1e39}, step=7)  # finite, but beyond float32: stored as inf
    picture = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    writer.image("samples", picture, step=-3)  # a negative step: int64's two's complement encoding
    writer.close()
    events = read_events(str(tmp_path))
    values = [(event.step, value) for event in events[1:] for value in event.summary.value]
    assert [(step, value.tag) for step, value in values] == [
        (0, "config/text_summary"), (7, "test/neg_elbo"), (7, "time/epoch_seconds"), (7, "train/grad_norm"),
        (-3, "samples")]
    assert values[0][1].tensor.string_val == [b'    {\n      "lr": 0.001\n    }']
    assert values[0][1].metadata.plugin_data.plugin_name == "text"
    assert [dim.size for dim in values[0][1].tensor.tensor_shape.dim] == [1]
    assert values[1][1].simple_value == 94.3125 and values[2][1].simple_value == 2.5
    assert values[3][1].simple_value == float("inf")
    image = values[4][1].image
    assert (image.height, image.width, image.colorspace) == (4, 6, 1)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image.encoded_image_string))), picture)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("events") / "vae")
    completed = subprocess.run([sys.executable, "-m", "experiments.vae_mnist", "--dataset=digits", "--epochs=2",
                                "--hidden_sizes=32", "--latent_dim=2", "--steps_per_chunk=2", f"--workdir={workdir}"],
                               cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return workdir


@pytest.mark.slow  # an end-to-end run in a subprocess
def test_epoch_scalars_equal_metrics_jsonl(vae_run):
    lines = [json.loads(line) for line in open(os.path.join(vae_run, "metrics.jsonl"))]
    scalars = {(value.tag, event.step): value.simple_value for event in read_events(vae_run)
               for value in event.summary.value if value.HasField("simple_value")}
    for line in lines:
        for name, tag in (("test/neg_elbo",) * 2, ("test/kl",) * 2, ("train/neg_elbo",) * 2,
                          ("epoch_seconds", "time/epoch_seconds")):  # the timing figures in their own group
            assert scalars[tag, line["epoch"]] == pytest.approx(line[name], rel=1e-6)  # stored as float32
        assert ("epoch_seconds", line["epoch"]) not in scalars


@pytest.mark.slow  # an end-to-end run in a subprocess
def test_training_scalars_every_chunk_average_to_the_epoch(vae_run):
    lines = [json.loads(line) for line in open(os.path.join(vae_run, "metrics.jsonl"))]
    steps = {}
    for event in read_events(vae_run):
        for value in event.summary.value:
            if value.tag == "train_steps/neg_elbo":
                steps[event.step] = value.simple_value
    per_epoch = len(steps) // 2
    assert len(steps) == 2 * per_epoch and per_epoch > 1  # several chunks of 2 steps per epoch
    assert sorted(steps)[-1] == 2 * sorted(steps)[per_epoch - 1]  # global steps: epoch 2 ends at twice epoch 1
    # Every step's batch is full: the epoch's mean is its chunks' means weighted by their steps.
    ends = sorted(steps)[:per_epoch]
    weights = np.diff([0] + ends)
    assert np.average([steps[end] for end in ends], weights=weights) == pytest.approx(
        lines[0]["train/neg_elbo"], rel=1e-5)


@pytest.mark.slow  # an end-to-end run in a subprocess
def test_pictures_of_every_epoch_and_the_config(vae_run):
    images, texts = {}, {}
    for event in read_events(vae_run):
        for value in event.summary.value:
            if value.HasField("image"):
                images.setdefault(value.tag, []).append(event.step)
            elif value.metadata.plugin_data.plugin_name == "text":
                texts[value.tag] = value.tensor.string_val[0].decode()
    for name in ("reconstructions", "samples", "interpolation", "latent_manifold"):
        assert sorted(set(images[name])) == [1, 2], (name, images.get(name))
    assert any('"latent_dim": 2' in text for tag, text in texts.items() if tag.startswith("config"))

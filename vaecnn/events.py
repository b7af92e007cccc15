"""TensorBoard event files in a run's workdir, beside metrics.jsonl, written by this module alone (no
TensorFlow, no tensorboardX: a few protocol-buffer fields and TFRecord framing). `tensorboard --logdir
runs/` shows every run below runs/.

What a run writes: per-epoch scalars (step = epoch; the same numbers as metrics.jsonl), training means
over each compiled chunk of steps (step = global training step), the resolved config as text, and the
VAE's picture grids of every epoch (step = epoch), so a reader can scrub through them.

The format (tensorboard/compat/proto/event.proto, summary.proto, tensor.proto): each record is
`uint64 length, uint32 masked CRC-32C of the length, the serialized Event, uint32 masked CRC-32C of it`;
an Event is {1: wall_time double, 2: step int64, 3: file_version string, 5: Summary}; a Summary is
repeated {1: Value}, each Value {1: tag, 2: simple_value float, 4: Image, 8: TensorProto, 9: SummaryMetadata}.
"""

import contextlib
import io
import json
import math
import os
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from vaecnn import config as vconfig
from vaecnn import disk, distributed


TIME_SCALARS = ("epoch_seconds", "compile_seconds", "eval_seconds", "train_seconds")


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)  # the Castagnoli polynomial, reflected
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C of `data`, rotated right by 15 bits plus 0xa282ead8 (mod 2^32)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf encodes it
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, value: bytes | int | float, kind: str = "bytes") -> bytes:
    """One protocol-buffer field: kind "bytes" (a string or message), "int" (varint), "float", "double"."""
    if kind == "int":
        return _varint(number << 3) + _varint(value)
    if kind == "double":
        return _varint(number << 3 | 1) + struct.pack("<d", value)
    if kind == "float":  # a finite value beyond float32's range is stored as ±inf, as TensorBoard's writers do
        with np.errstate(over="ignore"):
            return _varint(number << 3 | 5) + np.array(value, "<f4").tobytes()
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def scalar_value(tag: str, value: float) -> bytes:
    """A Summary.Value of one float32 number."""
    return _field(1, tag.encode()) + _field(2, value, "float")


def image_value(tag: str, image_HxW: np.ndarray) -> bytes:
    """A Summary.Value of a grayscale uint8 picture, PNG-encoded (colorspace 1: grayscale)."""
    png = io.BytesIO()
    Image.fromarray(np.asarray(image_HxW, np.uint8)).save(png, format="PNG")
    height, width = image_HxW.shape
    image = (_field(1, height, "int") + _field(2, width, "int") + _field(3, 1, "int") + _field(4, png.getvalue()))
    return _field(1, tag.encode()) + _field(4, image)


def text_value(tag: str, text: str) -> bytes:
    """A Summary.Value for TensorBoard's text plugin: a string tensor of shape [1] under the tag
    `tag/text_summary`."""
    metadata = _field(1, _field(1, b"text"))  # SummaryMetadata.plugin_data.plugin_name
    shape = _field(2, _field(1, 1, "int"))  # TensorShapeProto.dim[0].size = 1
    tensor = _field(1, 7, "int") + _field(2, shape) + _field(8, text.encode())  # dtype 7: DT_STRING
    return _field(1, f"{tag}/text_summary".encode()) + _field(9, metadata) + _field(8, tensor)


def event_record(step: int, values: list[bytes] | None = None, file_version: str | None = None) -> bytes:
    """One TFRecord holding an Event of now: at `step`, a Summary of `values` (or the file's version line)."""
    event = _field(1, time.time(), "double") + _field(2, step, "int")
    if file_version is not None:
        event += _field(3, file_version.encode())
    if values:
        event += _field(5, b"".join(_field(1, value) for value in values))
    length = struct.pack("<Q", len(event))
    return (length + struct.pack("<I", masked_crc32c(length)) + event + struct.pack("<I", masked_crc32c(event)))


class EventWriter:
    """One run's TensorBoard event file. Every method takes plain host values.

    Written synchronously, in the caller's thread: a failed write raises in the run itself (one line,
    vaecnn.disk), where a background writer thread would make a full disk a traceback or a blocked queue.
    The file is created by the first write, not before: a resumed run that stops at once (a damaged
    checkpoint, a checkpoint of another model) leaves the workdir's files as they were. On the processes
    other than 0 of a multi-process run nothing is written.
    """

    def __init__(self, workdir: str):
        self._workdir, self._file, self._pending = workdir, None, []

    def _write(self, value: bytes, step: int) -> None:
        if not distributed.is_writer():
            return
        with self._out_of_space_named():
            if self._file is None:
                name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
                self._file = open(os.path.join(self._workdir, name), "ab")
                self._file.write(event_record(0, file_version="brain.Event:2"))
                for pending_value, pending_step in self._pending:
                    self._file.write(event_record(pending_step, [pending_value]))
            self._file.write(event_record(step, [value]))

    @contextlib.contextmanager
    def _out_of_space_named(self):
        try:
            yield
        except OSError as error:
            if error.errno not in disk.OUT_OF_SPACE:
                raise
            raise disk.out_of_space(self._workdir, "the TensorBoard event file") from None

    def scalars(self, values: Mapping[str, Any], step: int, prefix: str = "") -> None:
        """Every finite number of `values` as the scalar `prefix + name` at `step`; the timing figures
        under time/ (their own group, apart from the test/ and train/ curves)."""
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                tag = f"time/{name}" if name in TIME_SCALARS and not prefix else prefix + name
                self._write(scalar_value(tag, float(value)), step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        """Written with the first scalar or image (a text alone, e.g. the config, creates no file)."""
        # Indented four spaces: TensorBoard renders text as Markdown, and this keeps it verbatim.
        self._pending.append((text_value(tag, "\n".join("    " + line for line in text.splitlines())), step))

    def image(self, tag: str, image_HxW: np.ndarray, step: int) -> None:
        """A grayscale uint8 picture (e.g. plots.image_grid's)."""
        self._write(image_value(tag, np.asarray(image_HxW)), step)

    def flush(self) -> None:
        """Onto the disk now (once per epoch)."""
        if self._file is not None:
            with self._out_of_space_named():
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            with self._out_of_space_named():
                self._file.close()
            self._file = None


def open_events(workdir: str, config: Any) -> EventWriter:
    """The run's writer, with its resolved config as the text "config"."""
    events = EventWriter(workdir)
    events.text("config", json.dumps(vconfig.to_dict(config), indent=2, sort_keys=True))
    return events

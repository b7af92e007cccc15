"""Device mesh and placement: data parallelism over every device, of every process (vaecnn.distributed).

Parameters and optimizer state are replicated; batches are split along their leading axis over
the mesh's 'data' axis. On one CPU this is a no-op; on 8 TPU cores or several GPUs the same
compiled step runs data-parallel, with XLA inserting the gradient all-reduce.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vaecnn.errors import ConfigError

DATA_AXIS = "data"


def data_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process) with the axis 'data'."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array (parameters, optimizer state, keys, metrics)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The leading (batch) axis is split over the 'data' axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def round_up_to_devices(batch_size: int, mesh: Mesh) -> int:
    """The smallest multiple of the device count >= batch_size: evaluation batches are padded (and
    masked) anyway, so they can always be split evenly."""
    num_devices = mesh.shape[DATA_AXIS]
    return -(-batch_size // num_devices) * num_devices


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Raises ConfigError unless the batch splits evenly over the mesh."""
    num_devices = mesh.shape[DATA_AXIS]
    if batch_size <= 0 or batch_size % num_devices:
        raise ConfigError(f"--batch_size={batch_size} must be a positive multiple of the {num_devices} devices "
                          f"it is split over; pick e.g. "
                          f"--batch_size={max(num_devices, batch_size // num_devices * num_devices)}")

"""Several processes, one global mesh: JAX's own multi-process runtime, `jax.distributed`.

Each process runs the same program on its own devices; `jax.devices()` then lists every device of every
process, and vaecnn.sharding's mesh spans them all, so the one compiled step is data-parallel across
hosts, with XLA's collectives carrying the gradient all-reduce (through gloo between CPU processes).
Nothing else changes: the data set is placed on every device, each device gathers its own rows of every
global batch inside the compiled chunk (vaecnn.engine), the order of the global batches comes from the
same keys whatever the number of processes, and metrics come back replicated, summed over all devices.

Only process 0 writes the files of a run (metrics.jsonl, results.json, pictures, events, config) and
logs its progress (`is_writer`, below); orbax checkpoints are saved and restored by every process together.

    initialize(coordinator_address="10.0.0.1:8476", num_processes=4, process_id=rank)   # explicit
    initialize()   # on Cloud TPU, under SLURM or Open MPI: what jax.distributed detects by itself
"""

import os
import socket
import time

import jax

from vaecnn.errors import UserError

# Environments jax.distributed.initialize() configures by itself (its cluster detection), each with the
# variable that says how many processes this launch started: a task of `srun` (not a shell of `salloc`),
# a rank of `mpirun`, a host of a multi-host TPU slice.
_CLUSTER_SIZE = {"SLURM": "SLURM_STEP_NUM_TASKS", "Open MPI": "OMPI_COMM_WORLD_SIZE",
                 "Cloud TPU": "TPU_WORKER_HOSTNAMES"}


def is_writer() -> bool:
    """Whether this process writes a run's files: process 0 of a multi-process run (vaecnn.distributed),
    always in one process. The others compute the same numbers and write nothing."""
    import jax

    return jax.process_index() == 0


def detected_cluster() -> str | None:
    """The multi-process launch this process is part of, if any (more than one process)."""
    for name, variable in _CLUSTER_SIZE.items():
        value = os.environ.get(variable, "")
        size = len(value.split(",")) if name == "Cloud TPU" else int(value) if value.isdigit() else 0
        if size > 1:
            return name
    return None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout_seconds: int = 60, detect: bool = False) -> bool:
    """Starts jax.distributed when asked to (explicit arguments) or when a cluster is detected; returns
    whether it did; `detect` asks for jax.distributed's own detection where no variable above says so
    (a TPU pod slice, whose hosts it finds from the TPU metadata). Must run before any other JAX call.
    A coordinator that does not answer ends the process with one line (UserError) after
    `timeout_seconds`; a peer that stops answering ends every process within about `timeout_seconds`
    (jax.distributed's heartbeat: it aborts the process)."""
    explicit = (coordinator_address, num_processes, process_id)
    if all(value is None for value in explicit) and not detect and detected_cluster() is None:
        return False
    if any(value is None for value in explicit) and not all(value is None for value in explicit):
        raise UserError("--coordinator_address, --num_processes and --process_id go together: give all three "
                        "(or none, where jax.distributed detects the cluster: Cloud TPU, SLURM, Open MPI)")
    if coordinator_address is not None and process_id != 0:
        _wait_for_coordinator(coordinator_address, process_id, timeout_seconds)
    # Collectives between CPU processes go through gloo; accelerators use their own (NCCL, ICI).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   initialization_timeout=timeout_seconds, heartbeat_timeout_seconds=timeout_seconds)
    except Exception as error:  # the runtime raises several types for an unreachable coordinator
        where = coordinator_address or f"the coordinator of the {detected_cluster()} job"
        raise UserError(f"process {process_id} could not join {where} within {timeout_seconds} s "
                        f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); start every process "
                        "(./launch.sh multiprocess <experiment> --num_processes=N starts them on this machine) and "
                        "check --coordinator_address") from None
    return True


def parse_host_port(address: str) -> tuple[str, int]:
    """'host:port' (an IPv6 host in brackets: '[::1]:8476') -> (host, port); UserError unless the host is
    not empty and the port is in 1-65535."""
    host, separator, port = address.rpartition(":")
    host = host.strip("[]")
    if not (separator and host and port.isdigit() and 1 <= int(port) <= 65535):
        raise UserError(f"--coordinator_address={address}: expected host:port with a port in 1-65535, "
                        "e.g. 10.0.0.1:8476")
    return host, int(port)


def _wait_for_coordinator(address: str, process_id: int, timeout_seconds: int) -> None:
    """Until process 0's coordinator accepts a connection; a UserError after `timeout_seconds`.

    Why here: jax.distributed aborts the whole process (a C++ fatal error and a stack trace, no Python
    exception) when the coordinator never answers; checking first turns that into one line."""
    host, port = parse_host_port(address)
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            socket.create_connection((host, port), timeout=2).close()
            return
        except OSError as error:
            if time.monotonic() > deadline:
                raise UserError(f"process {process_id} could not reach the coordinator at {address} within "
                                f"{timeout_seconds} s ({error}); start process 0 first (./launch.sh multiprocess "
                                "<experiment> --num_processes=N starts them all on this machine) and check "
                                "--coordinator_address") from None
            time.sleep(0.5)


def barrier(name: str) -> None:
    """Waits until every process has come here (a no-op in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)

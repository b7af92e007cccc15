"""Several processes of one run: their flags, and jax.distributed started before any other JAX call."""

import os
import sys

from absl import flags, logging

from vaecnn import distributed
from vaecnn.errors import UserError

FLAGS = flags.FLAGS


def define() -> None:
    """--coordinator_address, --num_processes, --process_id: one process of a multi-process run
    (vaecnn.distributed); left out, the environment decides (Cloud TPU, SLURM, Open MPI) or one process runs."""
    where = {"module_name": sys.argv[0]}
    flags.DEFINE_string("coordinator_address", None, "host:port of process 0's coordinator, for a run over several "
                        "processes (./launch.sh multiprocess starts them on this machine).", **where)
    flags.DEFINE_integer("num_processes", None, "Processes of the run (with --coordinator_address).", lower_bound=1,
                         **where)
    flags.DEFINE_integer("process_id", None, "This process's index, 0 .. --num_processes - 1.", lower_bound=0, **where)
    flags.DEFINE_bool("distributed", False, "Join a multi-process run that jax.distributed detects by itself "
                      "(a TPU pod slice: the same command on every host); SLURM (srun) and Open MPI (mpirun) "
                      "launches are detected without it.", **where)
    flags.DEFINE_integer("distributed_timeout", 60, "Seconds to wait for the coordinator, or for a peer that "
                         "stopped answering, before every process stops.", lower_bound=1, **where)
    # Checked here, not by the runtime: jax.distributed crashes the interpreter on some bad values (a port
    # that is no number: a segmentation fault).
    flags.register_validator("coordinator_address", lambda address: address is None or _is_host_port(address),
                             "--coordinator_address must be host:port with a port in 1-65535, e.g. 10.0.0.1:8476")
    flags.register_multi_flags_validator(
        ["process_id", "num_processes"],
        lambda values: values["process_id"] is None or values["num_processes"] is None
        or values["process_id"] < values["num_processes"],
        "--process_id must be in [0, --num_processes)")


def _is_host_port(address: str) -> bool:
    try:
        distributed.parse_host_port(address)
    except UserError:
        return False
    return True


def start() -> None:
    """jax.distributed before any other JAX call, when the flags or the environment ask for it; then only
    process 0 logs progress and prints."""
    if "coordinator_address" not in FLAGS:
        return
    if distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                              FLAGS.distributed_timeout, detect=FLAGS.distributed) \
            and not distributed.is_writer():
        logging.set_verbosity(logging.WARNING)
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the runtime's own prints (gloo) too

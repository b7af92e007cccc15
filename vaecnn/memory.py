"""Whether a compiled step fits in the device's memory, checked before anything is allocated; and the host
allocator's setting that keeps XLA:CPU's temporary buffers mapped between executions."""

import ctypes
from collections.abc import Mapping
from typing import Any

import jax

from vaecnn.engine import Params
from vaecnn.errors import ConfigError
from vaecnn.evaluation import Batcher


# mallopt's parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_host_memory() -> bool:
    """Asks glibc's malloc to keep freed blocks for reuse rather than hand them back to the system: no
    blocks of their own mapping (M_MMAP_MAX = 0) and no trimming of the heap's top (M_TRIM_THRESHOLD 2 GiB).
    Process-wide; returns False where the C library has no mallopt (not glibc), which changes nothing.

    Why: XLA:CPU allocates each execution's temporary buffer afresh, and glibc serves a block above its
    mmap threshold (at most 32 MiB) with a mapping of its own, unmapped at free. So every chunk of training
    steps and every evaluation batch faulted its temporaries in again, page by page: the Kim CNN on MR
    (57.5 MiB of temporaries) took 14,738 minor page faults and about 11 ms per chunk, a chunk of its
    interleaved buckets being about 5 steps of 25 ms (benchmarks/results/vae_step_profile.md). The cost:
    the process keeps the heap its largest moment needed, as a run that allocates the same buffers every
    step does anyway.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def free_memory_bytes(device: jax.Device) -> int | None:
    """Memory the device can still allocate: the accelerator's allocator limit minus what it holds, or
    on a CPU the host's available memory (Linux's MemAvailable); None where neither is known."""
    stats = device.memory_stats()
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits_in_memory(what: str, lowered, shapes: str) -> None:
    """Compiles `lowered` (a jax.jit(...).lower(...) of a train chunk or eval step) and raises
    ConfigError, before anything is allocated, when it needs more memory than the device has free.
    `what` and `shapes` name it in the message.

    Why: a batch that cannot fit (a long text bucket, a large --batch_size) otherwise fails deep in
    XLA as RESOURCE_EXHAUSTED after data loading and compilation, or, on a CPU, takes the machine into
    swap. The compiled program's own accounting (temporaries plus the arguments and outputs it does
    not alias) is the measure; compiling here fills the same cache its first call uses.
    """
    stats = lowered.compile().memory_analysis()
    if stats is None:
        return
    needed = stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes - \
        stats.alias_size_in_bytes
    free = free_memory_bytes(jax.local_devices()[0])
    if free is not None and needed > free:
        raise ConfigError(f"one {what} on the largest batch ({shapes}) needs {needed / 2**30:.1f} GiB but "
                          f"{free / 2**30:.1f} GiB are free on {jax.local_devices()[0].platform}; lower the batch "
                          "size (--batch_size, --eval_batch_size) or, for text, --max_len")


def shapes_text(batch: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, value.shape))}" for name, value in batch.items()
                     if getattr(value, "ndim", 0) >= 2)


def check_eval_fits_in_memory(eval_step, params: Params, batcher: Batcher, key: jax.Array,
                              batch_sharding: jax.sharding.Sharding) -> None:
    batch = jax.device_put(batcher.largest_batch(), batch_sharding)
    check_fits_in_memory("evaluation step", eval_step.lower(params, batch, key), shapes_text(batch))



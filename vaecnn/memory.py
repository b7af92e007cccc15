"""Whether a compiled step fits in the device's memory, checked before anything is allocated."""

from collections.abc import Mapping
from typing import Any

import jax

from vaecnn.engine import Params
from vaecnn.errors import ConfigError
from vaecnn.evaluation import Batcher


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



r"""N processes of one run on this machine, over one global mesh (vaecnn.distributed):

    ./launch.sh multiprocess vae_mnist --num_processes=2 --dataset=digits --epochs=2 --workdir=W

starts `python -m experiments.<experiment> --coordinator_address=127.0.0.1:<free port> --process_id=<i>
[flags]` for i = 0 .. N - 1 and waits for them. If one fails, the others are stopped at once (SIGTERM, then
SIGKILL after 10 s) and its exit status is returned, so nothing hangs. Process 0's output is shown;
the others print nothing and log warnings only.
"""

import re
import signal
import socket
import subprocess
import sys
import time

GRACE_SECONDS = 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str]) -> int:
    counts = [re.fullmatch(r"--num_processes=(\d+)", arg) for arg in argv[1:]]
    counts = [int(match.group(1)) for match in counts if match]
    if len(argv) < 2 or argv[0].startswith("-") or not counts or counts[-1] < 1:
        print("error: usage: ./launch.sh multiprocess <experiment> --num_processes=N [flags]", file=sys.stderr)
        return 2
    experiment, flags, count = argv[0], argv[1:], counts[-1]
    address = f"127.0.0.1:{_free_port()}"
    processes = [subprocess.Popen([sys.executable, "-m", f"experiments.{experiment}",
                                   f"--coordinator_address={address}", f"--process_id={index}", *flags])
                 for index in range(count)]
    try:
        while True:
            codes = [process.poll() for process in processes]
            failed = [(index, code) for index, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                index, code = failed[0]
                _stop(processes)
                print(f"error: process {index} of {count} exited with status {code}; the others were stopped",
                      file=sys.stderr)
                return code
            if all(code == 0 for code in codes):
                return 0
            time.sleep(0.2)
    except KeyboardInterrupt:
        _stop(processes)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

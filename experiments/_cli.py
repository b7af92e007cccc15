"""What every experiment and benchmark main shares: absl start-up and one clear line for a user error.

A user-caused failure -- a flag value that cannot work, missing or corrupt data, an unusable workdir or
checkpoint, a diverged run -- ends with one line on stderr, `error: <what to do>`, and exit status 1.
Unexpected internal errors keep their traceback. Flags: experiments/_flags.py; what a main does with its
config (train, evaluate, seeds): experiments/_modes.py; several processes: experiments/_processes.py.
"""

import os
import sys
from collections.abc import Callable

from absl import app, flags, logging

from experiments import _processes
from vaecnn import disk, memory, preemption
from vaecnn.errors import UserError

FLAGS = flags.FLAGS
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _own_info_or_warnings(record) -> bool:
    """INFO lines from the project only (orbax logs a dozen per checkpoint); warnings from all."""
    return record.levelno >= logging.converter.STANDARD_WARNING or (
        record.pathname.startswith(_PROJECT_ROOT) and "site-packages" not in record.pathname)


def _fail(message: str) -> None:
    # One line: a multi-line message (e.g. a reason, then what to do) is joined, so scripts and users
    # see one self-contained error.
    print("error: " + " ".join(line.strip() for line in str(message).splitlines() if line.strip()),
          file=sys.stderr)
    sys.exit(1)


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's parser, but a bad flag (unknown name, bad value, failed validator) is one line and exit 1
    (absl's own prints two lines and a usage hint)."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        _fail(f"{error} (--helpshort lists the flags)")


def run(main: Callable[[list[str]], None]) -> None:
    """app.run(main), turning a flag error, a UserError or a full disk raised inside main into one line on
    stderr and exit status 1, without a traceback; a run stopped by a signal (vaecnn.preemption) prints
    where it stopped and exits with preemption.EXIT_STATUS."""

    def guarded(argv: list[str]) -> None:
        if len(argv) > 1:
            _fail(f"unexpected arguments {argv[1:]}; flags look like --name=value")
        logging.set_verbosity(logging.INFO)
        logging.get_absl_handler().addFilter(_own_info_or_warnings)
        memory.keep_freed_host_memory()  # XLA:CPU's temporaries stay mapped between executions
        try:
            _processes.start()
            main(argv)
        except (UserError, flags.ValidationError) as error:
            _fail(str(error))
        except preemption.Preempted as stopped:
            print(f"{stopped} (exit status {preemption.EXIT_STATUS})", file=sys.stderr)
            sys.exit(preemption.EXIT_STATUS)
        except OSError as error:  # a write no guard foresaw (a picture, a log): the same one line
            if error.errno not in disk.OUT_OF_SPACE:
                raise
            _fail(str(disk.out_of_space(error.filename or os.getcwd())))

    app.run(guarded, flags_parser=_parse_flags)

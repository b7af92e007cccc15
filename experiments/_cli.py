"""What every experiment main shares: absl start-up and one clear line for a user error."""

import os
import sys
from collections.abc import Callable

from absl import app, flags, logging

from vaecnn.errors import UserError


_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _own_info_or_warnings(record) -> bool:
    """INFO lines from the project only (orbax logs a dozen per checkpoint); warnings from all."""
    return record.levelno >= logging.converter.STANDARD_WARNING or (
        record.pathname.startswith(_PROJECT_ROOT) and "site-packages" not in record.pathname)


def run(main: Callable[[list[str]], None]) -> None:
    """app.run(main), turning a UserError (bad flag value, missing data, diverged training,
    unreadable checkpoint) or a flag that fails validation inside main into one message on stderr
    and exit status 1, without a traceback."""

    def guarded(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments {argv[1:]}; flags look like --name=value")
        logging.set_verbosity(logging.INFO)
        logging.get_absl_handler().addFilter(_own_info_or_warnings)
        try:
            main(argv)
        except (UserError, flags.ValidationError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)

    app.run(guarded)

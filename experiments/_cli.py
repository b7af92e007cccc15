"""What every experiment and benchmark main shares: absl start-up, flag types checked where flags are
parsed, and one clear line for a user error.

A user-caused failure -- a flag value that cannot work, missing or corrupt data, an unusable workdir or
checkpoint, a diverged run -- ends with one line on stderr, `error: <what to do>`, and exit status 1.
Unexpected internal errors keep their traceback.
"""

import os
import sys
from collections.abc import Callable, Sequence

from absl import app, flags, logging

from vaecnn import report
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
    """app.run(main), turning a flag error or a UserError raised inside main into one line on stderr and
    exit status 1, without a traceback."""

    def guarded(argv: list[str]) -> None:
        if len(argv) > 1:
            _fail(f"unexpected arguments {argv[1:]}; flags look like --name=value")
        logging.set_verbosity(logging.INFO)
        logging.get_absl_handler().addFilter(_own_info_or_warnings)
        try:
            main(argv)
        except (UserError, flags.ValidationError) as error:
            _fail(str(error))

    app.run(guarded, flags_parser=_parse_flags)


class _IntegerListParser(flags.ArgumentParser):
    """'512,256' -> (512, 256): comma-separated integers, each >= lower_bound."""

    syntactic_help = "a comma-separated list of integers"

    def __init__(self, lower_bound: int | None):
        self.lower_bound = lower_bound

    def parse(self, argument) -> tuple[int, ...]:
        if isinstance(argument, (list, tuple)):
            values = list(argument)
        else:
            values = [part.strip() for part in str(argument).split(",") if part.strip()]
        try:
            numbers = tuple(int(value) for value in values)
        except ValueError:
            raise ValueError("expected comma-separated integers, e.g. 3,4,5") from None
        if not numbers:
            raise ValueError("expected at least one integer")
        if self.lower_bound is not None and min(numbers) < self.lower_bound:
            raise ValueError(f"every entry must be >= {self.lower_bound}")
        return numbers

    def flag_type(self) -> str:
        return "integer list"


def define_integers(name: str, default: Sequence[int], help_text: str, lower_bound: int | None = 1) -> None:
    """A flag holding a tuple of integers, written --name=3,4,5; checked when flags are parsed."""
    flags.DEFINE(_IntegerListParser(lower_bound), name, ",".join(map(str, default)), help_text,
                 serializer=flags.CsvListSerializer(","))


def define_workdir(default: str, help_text: str, read_only_with: str | None = None) -> None:
    """--workdir, checked when flags are parsed: it must exist as a writable folder or be creatable.

    read_only_with: the name of a flag (e.g. 'predict') in whose presence the workdir is only read, so
    it need not be writable.
    """
    flags.DEFINE_string("workdir", default, help_text)

    def check(values: dict) -> bool:
        if read_only_with is not None and values[read_only_with]:
            return True
        try:
            report.check_workdir(values["workdir"])
        except UserError as error:
            raise flags.ValidationError(str(error)) from None
        return True

    flags.register_multi_flags_validator(["workdir"] + ([read_only_with] if read_only_with else []), check)


def define_output(default: str | None, help_text: str) -> None:
    """--output, a .json path (a PNG may go beside it), checked when flags are parsed: its folder must be
    writable or creatable, so a long benchmark does not fail only when it writes its result."""
    flags.DEFINE_string("output", default, help_text)

    def writable(path: str | None) -> bool:
        if path is None:
            return True
        try:
            report.check_workdir(os.path.dirname(os.path.abspath(path)))
        except UserError:
            return False
        return path.endswith(".json")

    flags.register_validator("output", writable, "must be a .json path in a folder that can be written")

"""Errors a user can act on. Experiments print their message (no traceback) and exit with status 1."""


class UserError(Exception):
    """Base class: the message alone says what went wrong and what to do."""


class ConfigError(UserError, ValueError):
    """A flag or configuration value that cannot work."""


class DataError(UserError):
    """Data that is missing, unreadable or corrupt; `hint`, where there is one, says in structured form
    what would fix it (vaecnn.data.LocalCopy for a data set with no local copy)."""

    def __init__(self, message: str, hint: object = None):
        super().__init__(message)
        self.hint = hint


class CheckpointError(UserError):
    """A checkpoint that cannot be read back into the current model."""


class TrainingDiverged(UserError):
    """The training objective became NaN or infinite."""


class DiskFull(UserError):
    """A write failed, or would fail, for lack of space or quota; what was written before is intact."""

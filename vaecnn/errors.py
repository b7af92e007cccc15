"""Errors a user can act on. Experiments print their message (no traceback) and exit with status 1."""


class UserError(Exception):
    """Base class: the message alone says what went wrong and what to do."""


class ConfigError(UserError, ValueError):
    """A flag or configuration value that cannot work."""


class DataError(UserError):
    """Data that is missing, unreadable or corrupt."""


class CheckpointError(UserError):
    """A checkpoint that cannot be read back into the current model."""


class TrainingDiverged(UserError):
    """The training objective became NaN or infinite."""

"""The errors jaxattn raises for bad input, each carrying one line that says what to do.

`experiments/train.py` catches `JaxattnError` and prints its message as a single line, so a user
sees what went wrong and how to fix it instead of a traceback. Anything else is a bug and keeps
its traceback.
"""


class JaxattnError(Exception):
    """Base class: the message is one line, written for the user, saying what to do."""


class ConfigError(JaxattnError, ValueError):
    """A config field has a value jaxattn cannot use (unknown kind, inconsistent sizes, ...)."""


class UnsupportedFeatureError(JaxattnError, NotImplementedError):
    """An attention kind was asked for a mask or flag it cannot honour (never silently ignored)."""


class DataNotFoundError(JaxattnError, FileNotFoundError):
    """A dataset is not prepared and the config does not allow building or downloading it."""


class CheckpointError(JaxattnError, RuntimeError):
    """A checkpoint in the workdir could not be restored; nothing was deleted."""


class NonFiniteLossError(JaxattnError, FloatingPointError):
    """The training loss or gradient norm became NaN/inf; checkpoints already written are kept."""

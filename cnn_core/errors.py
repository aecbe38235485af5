"""Errors a user can cause, each with a message a user understands.

Pages show ``st.error(str(err))``; the CLI prints ``error: ...`` and exits non-zero.
Tracebacks are for bugs only.
"""


class CnnLabError(Exception):
    """Base class for every error caused by user input or the user's environment."""


class InvalidConfig(CnnLabError, ValueError):
    """A model or training configuration breaks a rule; the message names the layer and the rule."""


class BadImage(CnnLabError, ValueError):
    """An image a user gave cannot be read or holds no digit."""


class BadCheckpoint(CnnLabError, ValueError):
    """A checkpoint file is unreadable, incomplete or does not match its config."""


class DatasetNotFound(CnnLabError, FileNotFoundError):
    """A dataset could not be found in any of the places tried."""


class RunNotFound(CnnLabError, KeyError):
    """No run with that id or name exists in the run store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "run not found"


class BadDataset(CnnLabError, ValueError):
    """A dataset was found but is malformed, or does not fit the model (size, channels, labels)."""


class OverBudget(InvalidConfig):
    """A run or a checkpoint would cost more memory, disk or time than the configured limits allow."""


class BadRunStore(CnnLabError, OSError):
    """The run store cannot be opened or written: not a database, truncated, read-only or on a full disk."""


class RunStoreLost(BadRunStore):
    """The database is empty or missing but run folders are beside it: it can be rebuilt from them."""


class RunBusy(CnnLabError, ValueError):
    """The run is queued or running, and the action needs it finished (delete, for example)."""


class InvalidRunName(CnnLabError, ValueError):
    """A run name that cannot be used (empty after trimming)."""

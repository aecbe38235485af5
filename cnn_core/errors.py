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

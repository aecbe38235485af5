"""Errors a user can cause, each with a message a user understands.

Pages show ``st.error(str(err))``; the CLI prints ``error: ...`` and exits non-zero.
Tracebacks are for bugs only.
"""

import errno


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


class NotAllowed(CnnLabError, PermissionError):
    """Someone may see an item (it is shared) but not change it, or may not do this at all (a quota, a server
    folder); the message says who can and what to do instead."""


class CannotResume(CnnLabError, ValueError):
    """A run cannot go on from a saved epoch: it completed or diverged, saved none, or is a sweep's trial."""


class InvalidRunName(CnnLabError, ValueError):
    """A run name that cannot be used (empty after trimming)."""


class StorageError(CnnLabError, OSError):
    """A file or folder could not be read or written: a full disk, a file that vanished while its folder was
    read, no permission. The message says what was being done, where, and what to try."""


_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and try again",
    errno.EDQUOT: "the disk quota is used up: free some space and try again",
    errno.ENOENT: "a file vanished while it was used: is something changing that folder? try again once it is still",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the disk is read-only",
}


def storage_error(err: OSError, doing: str) -> StorageError:
    """One line for an ``OSError`` met while ``doing`` something ("adding dataset 'x' to /data"), its path
    escaped."""
    from cnn_core.safetext import escape_controls

    hint = _HINTS.get(err.errno or 0, err.strerror or type(err).__name__)
    space = err.errno in (errno.ENOSPC, errno.EDQUOT)  # the file being written is a temp file: ``doing`` says where
    where = f" ({escape_controls(str(err.filename))[:200]})" if err.filename and not space else ""
    error = StorageError(f"{doing} failed: {hint}{where}")  # one argument: str() is the message alone
    error.errno = err.errno
    return error

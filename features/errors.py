"""The errors nrrcast expects and explains: one short line for the user, no traceback.

Every library raises a subclass of :class:`NrrcastError` for a problem the user can fix
(bad input, bad config, a contract breach, a missing model, a lock held by another run).
The command line catches these at one boundary, prints the message (plus the `hint`, what to
do) and exits with `exit_code`: 2 for usage and input errors, 1 for checks that failed or a
state that does not allow the run. Anything else is a bug and keeps its traceback.

Deterministic errors are never retried: running the same code on the same input again
gives the same error. Only :class:`TransientError` (and transient ``OSError`` such as a
timeout) may pass on a retry.

The subclasses also derive from ``ValueError`` / ``RuntimeError`` / ``OSError`` where the
code raised those before, so existing ``except ValueError`` handlers keep working.
"""

from __future__ import annotations


class NrrcastError(Exception):
    """Base of every expected nrrcast error.

    Parameters
    ----------
    message : str
        What went wrong and where (file, table, column, key, row count).
    *args : object
        Further exception arguments, kept in ``args`` as for any exception.
    hint : str, optional
        What the user can do about it, e.g. "pass --data-end YYYY-MM-DD"; shown after the
        message in parentheses.
    """

    exit_code: int = 1

    def __init__(self, message: str, *args: object, hint: str | None = None) -> None:
        super().__init__(message, *args)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(NrrcastError, ValueError):
    """The input cannot be used: a path that does not exist, an unreadable or empty table,
    a bad manifest.json, a bad option value. Exit 2."""

    exit_code = 2


class ConfigError(NrrcastError, ValueError):
    """A configuration file or value that does not match the typed schema. Exit 2."""

    exit_code = 2


class PathNotFoundError(InputError, FileNotFoundError):
    """A source, config or store path that does not exist. Exit 2."""


class UnsafePathError(InputError):
    """A path nrrcast refuses to write to (it overlaps the source or holds files nrrcast did
    not write). Exit 2."""


class ContractError(NrrcastError, ValueError):
    """The data breaks the input contract (checks failed). Exit 1."""

    exit_code = 1


class StateError(NrrcastError, RuntimeError):
    """The stores do not allow the run: no champion model, no matured outcomes, no scores.
    Exit 1."""

    exit_code = 1


class MissingModelError(StateError, LookupError):
    """No model behind the alias scoring or calibration needs (e.g. no champion yet). Exit 1."""


class LockHeldError(StateError):
    """Another nrrcast run holds the store's lock. Exit 1."""


class TransientError(NrrcastError, OSError):
    """An I/O failure that may pass on a retry (timeout, connection reset). Exit 1."""

    exit_code = 1


__all__ = [
    "ConfigError",
    "ContractError",
    "InputError",
    "LockHeldError",
    "MissingModelError",
    "NrrcastError",
    "PathNotFoundError",
    "StateError",
    "TransientError",
    "UnsafePathError",
]

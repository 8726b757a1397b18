"""The exceptions hf-lareid raises for problems a user can fix, under one base, [`LAReIDError`].

Every error of this package that is about the user's input, files or installation derives from `LAReIDError`; its
message is one line naming the file or value and the fix. Anything else that escapes (a `TypeError`, a
`KeyError`, ...) is a bug: the `lareid` command prints the first kind as one line and the second with its traceback
and where to report it.

The three user-facing kinds also keep the standard base a caller may already catch:

| class                 | also a        | raised for                                                        |
|-----------------------|---------------|-------------------------------------------------------------------|
| `InvalidInputError`   | `ValueError`  | a value, folder, file name or option the package cannot use       |
| `DamagedFileError`    | `OSError`     | an empty, truncated, edited or foreign file where ours should be  |
| `MissingExtraError`   | `ImportError` | an optional dependency that is not installed (names the extra)    |

Example:

```python
>>> from hf_lareid.utils.errors import InvalidInputError, LAReIDError
>>> try:
...     raise InvalidInputError("--threshold nan is not a number: give a value between -1 and 1.")
... except LAReIDError as error:
...     print(error)
--threshold nan is not a number: give a value between -1 and 1.
>>> issubclass(InvalidInputError, ValueError)
True

```

This module imports nothing (it sits below every other module of the package).
"""

from __future__ import annotations

__all__ = ["DamagedFileError", "InvalidInputError", "LAReIDError", "MissingExtraError"]


class LAReIDError(Exception):
    """The base of the errors a user can fix; the message is one line that names the file or value and the fix."""


class InvalidInputError(LAReIDError, ValueError):
    """A value, folder, file name or option that cannot be used (a `ValueError`)."""


class DamagedFileError(LAReIDError, OSError):
    """A file is empty, truncated or not in the expected format; the message names it and says what to do."""


class MissingExtraError(LAReIDError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""

"""How the node's commands report a refusal: one line per error on stderr, and the exit status.

KeyError (no such delivery, push, mailbox or directory entry) is a usage error, 2; an :class:`~xds.errors.XDSError`
(each of its errors with its code), a ValueError (refused: settled, unknown patient, a bad package) or an OSError
(a file that cannot be read) is 1.
"""

from __future__ import annotations

import sys

from xds.errors import XDSError

REPORTED = (KeyError, XDSError, ValueError, OSError)
"""The exceptions :func:`report_failure` turns into an exit status; anything else is a bug and keeps its traceback."""


def report_failure(exc: BaseException) -> int:
    """Print ``exc`` for the operator and return the exit status."""
    if isinstance(exc, KeyError):
        print(f"xds: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    if isinstance(exc, XDSError):
        for item in exc.items():
            print(f"xds: {item.error_code}: {item.code_context}", file=sys.stderr)
        return 1
    print(f"xds: {exc}", file=sys.stderr)
    return 1


__all__ = ["REPORTED", "report_failure"]

"""Errors that map to govctl's exit codes: 0 ok, 1 failure, 2 bad input."""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class GovctlError(Exception):
    """A failure with a message for the user (exit 1)."""

    exit_code = EXIT_FAILURE


class BadInput(GovctlError):
    """The user's input is wrong; the message names it and says what to do (exit 2)."""

    exit_code = EXIT_BAD_INPUT

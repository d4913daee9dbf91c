"""Errors that the CLI turns into one line and an exit code."""

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_MISSING_TOOL = 0, 1, 2, 3


class NeurohdlError(Exception):
    """An error with a one-line message for the user and the CLI exit code that goes with it."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(NeurohdlError):
    exit_code = EXIT_BAD_INPUT


class MissingToolError(NeurohdlError):
    exit_code = EXIT_MISSING_TOOL


class CheckFailed(NeurohdlError):
    exit_code = EXIT_MISMATCH


class DoesNotFit(CheckFailed):
    """A design too large for its device; ``usage`` holds what synthesis (and packing) counted, in
    the keys of a synthesis result (``lut4``, ``ff``, ``carry``, ``bram``, ``dsp``, ``utilization``,
    ``dir``: the build directory, with the netlist)."""

    def __init__(self, message: str, usage: dict):
        super().__init__(message)
        self.usage = usage


def failure_reason(e: Exception) -> str:
    """One line for a table of runs that goes on past a failure: a NeurohdlError's own message, or,
    for anything else (a bug), the exception's type as well."""
    return str(e) if isinstance(e, NeurohdlError) else f"{type(e).__name__}: {e}"

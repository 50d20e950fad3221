"""Errors the CLI turns into a clear message and a non-zero exit code."""


class RlaifError(Exception):
    """A user-facing error: the message names the file, line or field at fault."""

    exit_code = 2


class ConfigError(RlaifError):
    pass


class InputError(RlaifError):
    pass


class GateFailed(RlaifError):
    """The label gate refused the labels: no training may run on them."""

    exit_code = 3

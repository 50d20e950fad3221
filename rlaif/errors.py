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


class JudgeError(RlaifError):
    """A judge that cannot work at all: an unreachable endpoint, a backend that cannot write text.
    Exit code 4: unlike bad input, a retry may help (a judge server still starting)."""

    exit_code = 4

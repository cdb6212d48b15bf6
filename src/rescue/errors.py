"""Errors the command line turns into clear messages and exit codes."""

from __future__ import annotations


class RescueError(Exception):
    """Bad input: reported in one clear message, exit code 2, before anything runs."""

    exit_code = 2


class ConfigError(RescueError):
    def __init__(self, file: str, key: str, expected: str, got: object = None) -> None:
        self.file, self.key, self.expected = file, key, expected
        where = f"{file}: {key}" if key else file
        message = f"{where}: expected {expected}"
        if got is not None:
            message += f", got {got!r}"
        super().__init__(message)

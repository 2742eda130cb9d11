"""One exception family for everything a user can cause.

The CLI turns an :class:`R1ReleaseError` into a single line on stderr and its ``exit_code``;
library callers get the exception with the same message.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

# Secrets r1release may find in its environment: Hub tokens, and the OIDC id token that
# trusted publishing exchanges for one.
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_ID_TOKEN")
_SECRETS: list[str] = []  # obtained at run time (the token trusted publishing buys)


def remember_secret(value: str) -> None:
    """Redact ``value`` from every message from now on, as the environment's tokens are."""
    if value and value not in _SECRETS:
        _SECRETS.append(value)


def redact(text: str) -> str:
    """``text`` with every token this process knows replaced by ``***``."""
    for token in [os.environ.get(name) for name in TOKEN_VARIABLES] + _SECRETS:
        if token and len(token) >= 4:
            text = text.replace(token, "***")
    return text


class R1ReleaseError(Exception):
    """A problem the user can fix; ``str()`` is the one-line message, never holding a token
    (a Hub error that echoes the request's headers is redacted)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = redact(message)
        self.hint = redact(hint) if hint else hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(R1ReleaseError):
    """Bad command-line usage."""

    exit_code = 2


class ConfigError(R1ReleaseError):
    """``release.yaml`` is unreadable or invalid; names file, line and key.

    One load reports every error it finds: the raised error is the first, and ``errors``
    holds all of them (at most a bound; ``unreported`` counts the rest), one line each, for
    the CLI to print. ``str()`` is the first error's line, plus how many more there are.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = str(file)
        self.line = line
        self.key = key
        self.reason = message
        self.errors: tuple[ConfigError, ...] = (self,)
        self.unreported = 0
        where = self.file if line is None else f"{self.file}:{line}"
        prefix = f"{where}: {key}: " if key else f"{where}: "
        super().__init__(prefix + message, hint=hint)

    @classmethod
    def several(cls, errors: Sequence[ConfigError], unreported: int = 0) -> ConfigError:
        """One error standing for ``errors`` (and ``unreported`` more found but not kept)."""
        if len(errors) == 1 and not unreported:
            return errors[0]
        first = errors[0]
        combined = cls(first.reason, file=first.file, line=first.line, key=first.key)
        combined.hint = first.hint
        combined.errors, combined.unreported = tuple(errors), unreported
        combined.args = (str(combined),)
        return combined

    @property
    def count(self) -> int:
        return len(self.errors) + self.unreported

    def __str__(self) -> str:
        text = super().__str__()
        more = self.count - 1
        return f"{text} (and {more} more error{'s' * (more > 1)})" if more > 0 else text


class CheckpointError(R1ReleaseError):
    """The checkpoint directory itself cannot be used (missing, not a directory)."""

    exit_code = 2


class FileUnreadable(R1ReleaseError):
    """A file inside the checkpoint exists but cannot be parsed.

    Rules raise it (through :class:`~r1release.checkpoint.Checkpoint`) when a file they need is
    broken; the ``json-files`` and ``safetensors-header`` rules report the breakage once, so the
    engine skips the rule instead of reporting the same file again.
    """

    def __init__(self, file: str, message: str) -> None:
        self.file = file
        self.reason = message
        super().__init__(f"{file}: {message}")

"""r1release: check, fix, document and publish LLM training checkpoints.

The public API is imported lazily so that ``import r1release`` (and ``r1release --help``)
stays fast; nothing here imports torch or transformers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

# The one place the version is written: pyproject.toml reads it (setuptools' dynamic version).
__version__ = "0.1.0"

NO_TORCH_ADVICE = "PyTorch was not found."


def _not_the_no_torch_advice(record: logging.LogRecord) -> bool:
    """transformers says at import, on stderr, that torch is missing ("PyTorch was not found.
    Models won't be available…"): advice for users of its models, noise on every `check`,
    `fix` and `release` of the core install, which needs only its tokenizers and configs.
    This drops that one record; every other warning of transformers still shows."""
    return not str(record.msg).startswith(NO_TORCH_ADVICE)


# Here, before any module of r1release can import transformers (this runs first).
logging.getLogger("transformers").addFilter(_not_the_no_torch_advice)

_EXPORTS = {
    "check": "r1release.checker",
    "plan_fixes": "r1release.fixes",
    "apply_fixes": "r1release.fixes",
    "fix": "r1release.api",
    "load_config": "r1release.api",
    "Checkpoint": "r1release.checkpoint",
    "Config": "r1release.config",
    "Finding": "r1release.findings",
    "Report": "r1release.findings",
    "Severity": "r1release.findings",
    "R1ReleaseError": "r1release.errors",
    "ConfigError": "r1release.errors",
    "REGISTRY": "r1release.rules",
    "render_card": "r1release.card",
    "ReleaseInfo": "r1release.card",
    "build_stage": "r1release.stage",
    "publish": "r1release.hub",
    "finalize": "r1release.training",
    "R1ReleaseCallback": "r1release.training",
    "FinalizeError": "r1release.training",
}

if TYPE_CHECKING:
    from r1release.api import fix, load_config
    from r1release.card import ReleaseInfo, render_card
    from r1release.checker import check
    from r1release.checkpoint import Checkpoint
    from r1release.config import Config
    from r1release.errors import ConfigError, R1ReleaseError
    from r1release.findings import Finding, Report, Severity
    from r1release.fixes import apply_fixes, plan_fixes
    from r1release.hub import publish
    from r1release.rules import REGISTRY
    from r1release.stage import build_stage
    from r1release.training import FinalizeError, R1ReleaseCallback, finalize


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'r1release' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "REGISTRY",
    "Checkpoint",
    "Config",
    "ConfigError",
    "FinalizeError",
    "Finding",
    "R1ReleaseCallback",
    "R1ReleaseError",
    "ReleaseInfo",
    "Report",
    "Severity",
    "__version__",
    "apply_fixes",
    "build_stage",
    "check",
    "finalize",
    "fix",
    "load_config",
    "plan_fixes",
    "publish",
    "render_card",
]

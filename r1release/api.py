"""Small conveniences over the building blocks, for training scripts and notebooks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from r1release import config as config_mod
from r1release.config import Config, RuleSetting
from r1release.fixes import FixPlan, apply_fixes, plan_fixes


def load_config(path: str | Path = config_mod.DEFAULT_CONFIG) -> Config:
    """Load and validate ``release.yaml`` (raises :class:`ConfigError`)."""
    return config_mod.load(path)


def fix(
    path: str | Path,
    *,
    dry_run: bool = False,
    settings: Mapping[str, RuleSetting] | None = None,
) -> FixPlan:
    """Fix every fixable finding in ``path`` (atomically); ``dry_run`` only plans."""
    plan = plan_fixes(path, settings=settings)
    if not dry_run:
        apply_fixes(plan)
    return plan

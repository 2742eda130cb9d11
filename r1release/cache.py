"""r1release's user cache directory: derived data that is safe to lose.

``$R1RELEASE_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/r1release``, else
``~/.cache/r1release``. Everything under it can be deleted at any time; a missing, corrupt
or unwritable cache only costs the work it would have saved, never a wrong result.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "R1RELEASE_CACHE_DIR"


def cache_dir() -> Path:
    explicit = os.environ.get(CACHE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "r1release"

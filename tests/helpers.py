from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from r1release.checker import check

_DELETE = object()
DELETE: Any = _DELETE


def edit_json(path: Path, name: str, **changes: Any) -> None:
    """Set (or with DELETE, remove) top-level keys of a JSON file in the checkpoint."""
    file = path / name
    doc = json.loads(file.read_text()) if file.exists() else {}
    for key, value in changes.items():
        if value is _DELETE:
            doc.pop(key, None)
        else:
            doc[key] = value
    file.write_text(json.dumps(doc, indent=2) + "\n")


def rule_findings(path: Path, rule: str, **kwargs: Any) -> list[Any]:
    return list(check(path, **kwargs).by_rule(rule))

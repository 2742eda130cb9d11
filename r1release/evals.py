"""Benchmark results from the evaluation tools people use (lighteval, lm-evaluation-harness),
read into one plain record per (task, metric), and written out in the Hub's current format
(``.eval_results/*.yaml``).

Interface (agreed between modules; the readers are filled in here):
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class EvalResult:
    """One benchmark number, as the evaluation tool recorded it."""

    task: str  # the tool's task name, e.g. "aime24" or "gsm8k"
    metric: str  # e.g. "pass@1", "exact_match,strict-match"
    value: float
    tool: str  # "lighteval" or "lm-evaluation-harness"
    source: str  # the results file it came from (as given in release.yaml)
    benchmark: str | None = None  # display name of a known benchmark, e.g. "AIME 2024"
    dataset_id: str | None = None  # its Hub dataset id, when known
    stderr: float | None = None
    samples: int | None = None  # number of evaluated examples
    tool_version: str | None = None
    # temperature, top_p, max_new_tokens, num_samples (per prompt) when the file records them
    generation: Mapping[str, float | int] = field(default_factory=lambda: MappingProxyType({}))

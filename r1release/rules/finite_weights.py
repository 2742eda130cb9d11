"""finite-weights (deep): no NaN or Inf in any floating-point tensor.

Runs with ``--deep``, which reads every byte once: the sha256 of every file and this scan
are computed in the same pass, files in parallel.

Scanned: BF16, F16, F32, F64, C64 (each part) and every float8 (E4M3, E5M2, E8M0 and the FNUZ
variants, each by its own NaN/Inf bit patterns). Not scanned, and nothing skipped: integers
and BOOL, and F4 and F6 (E2M3, E3M2), which have no NaN or Inf encoding: they are finite by
construction (an MX checkpoint's F8_E8M0 scales are scanned).

Fails: a bf16 tensor holding ``0x7FC0`` (NaN).
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.findings import Severity
from r1release.rules.base import Context, Need, Problem, Rule


def check(ctx: Context) -> Iterator[Problem]:
    if ctx.deep is None:
        return
    for file, tensors in sorted(ctx.deep.nonfinite.items()):
        shown = ", ".join(f"{name} ({count})" for name, count in tensors[:5])
        more = f" and {len(tensors) - 5} more tensors" if len(tensors) > 5 else ""
        yield Problem(
            f"NaN/Inf values in {shown}{more}",
            file,
            "the run diverged or the save is corrupt; release an earlier checkpoint",
        )


RULE = Rule(
    id="R304",
    name="finite-weights",
    severity=Severity.ERROR,
    description="no NaN or Inf in the weights (deep)",
    check=check,
    needs=frozenset({Need.DEEP}),
)

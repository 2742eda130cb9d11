"""safetensors-header: every safetensors file has a valid header and layout.

The 8-byte header length fits the file, the header is a JSON object, each tensor has a dtype
safetensors defines (all of them, sub-byte F4 and F6 included) and a shape matching its byte
span (element count times the dtype's bits; a sub-byte tensor that does not fill whole bytes
is invalid, as safetensors has it), offsets are contiguous without overlap, and the file
ends exactly after the last tensor. Only headers are read.

Fails: a truncated shard, a header length past the end of the file, overlapping offsets.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.checkpoint import HeaderError
from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule


def check(ctx: Context) -> Iterator[Problem]:
    for name in ctx.checkpoint.safetensors_files():
        try:
            ctx.checkpoint.header(name)
        except HeaderError as exc:
            yield Problem(exc.reason, name, "re-save the model; the file is damaged or incomplete")


RULE = Rule(
    id="R302",
    name="safetensors-header",
    severity=Severity.ERROR,
    description="safetensors headers parse and tensor offsets fit the file",
    check=check,
)

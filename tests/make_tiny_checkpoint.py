"""Write a tiny but real checkpoint (tests/factory.py) for CI's dry-run release.

    python tests/make_tiny_checkpoint.py DIR [--case NAME]

The default case is the fixture's typical SFT output (Qwen2.5 base trained on ChatML: EOS
and use_cache wrong), which `r1release release` fixes in its staged copy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from factory import build_checkpoint, real_cases


def main(argv: list[str] | None = None) -> None:
    cases = real_cases()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where to write the checkpoint")
    parser.add_argument("--case", choices=sorted(cases), default="qwen2.5-base-after-chatml-sft")
    args = parser.parse_args(argv)
    build_checkpoint(args.directory, cases[args.case])
    print(f"wrote {args.case} to {args.directory}")


if __name__ == "__main__":
    main()

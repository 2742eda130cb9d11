"""Write lm-evaluation-harness's results file with a real ``lm_eval run``, offline.

    python3 -m venv /work/evalvenv && /work/evalvenv/bin/pip install torch==2.13.0 lm-eval
    /work/evalvenv/bin/python tests/data/evals/make_lm_eval.py      # from the repository root

The model is a tiny random Qwen2 (tests/factory.py) with the test tokenizer of the fixture's
Qwen2.5 case; the task is ``r1release_tiny_arith`` (``lm_eval_task/``: four local examples,
gsm8k's shape: ``generate_until``, regex filters, exact match, sampling at temperature 0.6,
two samples per prompt). The numbers mean nothing; the file's layout is lm_eval's own. The
results JSON is copied to ``tests/data/evals/lm_eval/`` as lm_eval wrote it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "tests"))

from factory import build_checkpoint, real_cases, tiny_qwen2  # noqa: E402

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def tiny_model(root: Path) -> tuple[Path, Path]:
    """A loadable transformers checkpoint (random weights) and the test tokenizer, in its own
    directory: beside a qwen2 ``config.json``, transformers 5 would rebuild it as a Qwen2 BPE
    tokenizer (which encodes nothing with the test vocabulary)."""
    import torch

    built = build_checkpoint(root / "built", real_cases()["qwen2.5-base-after-chatml-sft"])
    model_dir, tokenizer_dir = root / "OpenR1-Tiny", root / "tokenizer"
    model = tiny_qwen2(eos_token_id=151645, bos_token_id=151643)
    model.to(torch.float32).save_pretrained(model_dir)
    tokenizer_dir.mkdir()
    for name in TOKENIZER_FILES:
        shutil.copy(built / name, tokenizer_dir / name)
    return model_dir, tokenizer_dir


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, tokenizer_dir = tiny_model(Path(tmp))
        out = Path(tmp) / "out"
        command = [
            *(sys.executable, "-m", "lm_eval", "run"),
            *("--model", "hf"),
            *("--model_args", f"pretrained={model_dir},tokenizer={tokenizer_dir},dtype=float32"),
            *("--tasks", "r1release_tiny_arith"),
            *("--include_path", str(HERE / "lm_eval_task")),
            *("--device", "cpu", "--batch_size", "1", "--seed", "1234"),
            *("--output_path", str(out)),
        ]
        subprocess.run(command, cwd=REPO, env=os.environ | OFFLINE, check=True)
        target = HERE / "lm_eval"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for path in sorted(out.rglob("results_*.json")):
            shutil.copy(path, target / path.name)
            print(f"wrote {target / path.name}", file=sys.stderr)


if __name__ == "__main__":
    main()

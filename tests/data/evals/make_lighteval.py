"""Write lighteval's results file for AIME 2024, MATH-500 and GPQA Diamond, with lighteval.

    python3 -m venv /work/evalvenv && /work/evalvenv/bin/pip install torch==2.13.0 lighteval
    /work/evalvenv/bin/python tests/data/evals/make_lighteval.py

Offline, without a GPU: lighteval's own ``Pipeline`` runs its real task configs (``aime24``,
``math_500``, ``gpqa:diamond``, from lighteval's task modules), computes its real metrics and
aggregates, and its ``EvaluationTracker`` writes ``results_<date>.json``. Two things are
stood in for: the datasets (a few records in each dataset's own columns, since the Hub cannot
be reached) and the model (canned answers, some right and some wrong, from a model whose
config is the vLLM config open-r1 evaluates with, generation parameters included). The file
is copied to ``tests/data/evals/lighteval/`` as lighteval wrote it.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import shutil
import sys
import tempfile
from pathlib import Path

from datasets import Dataset, DatasetDict
from lighteval.logging.evaluation_tracker import EvaluationTracker
from lighteval.models.abstract_model import LightevalModel
from lighteval.models.model_input import GenerationParameters
from lighteval.models.model_output import ModelResponse
from lighteval.models.vllm.vllm_model import VLLMModelConfig
from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters
from lighteval.tasks import registry
from lighteval.tasks.lighteval_task import LightevalTask
from lighteval.utils.cache_management import SampleCache

HERE = Path(__file__).resolve().parent
TASK_MODULES = ("aime.py", "math_500.py", "gpqa.py")
TASKS = "aime24|0,math_500|0,gpqa:diamond|0"

# (dataset record, the model's answer): the records use each dataset's own column names.
AIME = [
    ({"problem": f"AIME problem {i}", "answer": str(answer)}, f"\\boxed{{{given}}}")
    for i, (answer, given) in enumerate([(33, 33), (23, 23), (116, 16), (809, 809), (197, 5)])
]
MATH_500 = [
    ({"problem": f"MATH problem {i}", "solution": f"$\\boxed{{{a}}}$", "answer": str(a)}, given)
    for i, (a, given) in enumerate([(4, 4), (10, 10), (7, 3), (12, 12)])
]
GPQA_ROWS = [
    {
        "Question": f"GPQA Diamond question {i}",
        "Correct Answer": f"right {i}",
        "Incorrect Answer 1": f"wrong {i}a",
        "Incorrect Answer 2": f"wrong {i}b",
        "Incorrect Answer 3": f"wrong {i}c",
    }
    for i in range(6)
]
LOCAL_DATA = {
    "aime24": ("train", [record for record, _ in AIME]),
    "math_500": ("test", [record for record, _ in MATH_500]),
    "gpqa:diamond": ("train", GPQA_ROWS),
}


def only_these_task_modules(custom_tasks=None, load_multilingual=False):
    """lighteval's registry imports every task module, and some download at import time:
    load the three whose configs this run uses, with the registry's own loader."""
    tasks_dir = Path(registry.__file__).parent / "tasks"
    files = [tasks_dir / name for name in TASK_MODULES]
    return registry.Registry._load_from_files(files, "lighteval.tasks.tasks")


def local_datasets(tasks: dict[str, LightevalTask], dataset_loading_processes: int = 1) -> None:
    """What ``LightevalTask.load_datasets`` does, from the records above instead of the Hub."""
    for task in tasks.values():
        split, rows = LOCAL_DATA[task.name]
        task.dataset = DatasetDict({split: Dataset.from_list(rows)})


class CannedModel(LightevalModel):
    """Answers from the tables above: AIME and MATH-500 answers boxed, GPQA's the gold letter
    for even questions and a wrong one for odd ones."""

    def __init__(self, config: VLLMModelConfig) -> None:
        self.config = config
        self._cache = SampleCache(config)

    @property
    def tokenizer(self):
        return None

    @property
    def add_special_tokens(self) -> bool:
        return False

    @property
    def max_length(self) -> int:
        return self.config.max_model_length

    def greedy_until(self, docs):
        return [ModelResponse(text=[self.answer(doc)]) for doc in docs]

    def answer(self, doc) -> str:
        thought = "<think>Let me work through this.</think>"
        if doc.task_name.startswith("aime24"):
            given = dict((r["problem"], a) for r, a in AIME)[doc.query.strip().splitlines()[-1]]
            return f"{thought} Therefore, the final answer is: ${given}$. I hope it is correct"
        if doc.task_name.startswith("math_500"):
            given = dict((r["problem"], a) for r, a in MATH_500)[doc.query.strip().splitlines()[-1]]
            return f"{thought}\nANSWER: {given}"
        number = int(doc.query.split("question ")[1].split()[0])
        letter = doc.choices[doc.gold_index if number % 2 == 0 else (doc.gold_index + 1) % 4]
        return f"{thought}\nAnswer: {letter}"

    def loglikelihood(self, docs):
        raise NotImplementedError("these tasks are generative")

    def loglikelihood_rolling(self, docs):
        raise NotImplementedError("these tasks are generative")


def main() -> None:
    registry.Registry.load_all_task_configs = staticmethod(only_these_task_modules)
    LightevalTask.load_datasets = staticmethod(local_datasets)
    with tempfile.TemporaryDirectory() as tmp:
        config = VLLMModelConfig(
            model_name="org/OpenR1-Tiny",
            dtype="bfloat16",
            max_model_length=32768,
            gpu_memory_utilization=0.8,
            cache_dir=str(Path(tmp) / "cache"),
            generation_parameters=GenerationParameters(
                max_new_tokens=32768, temperature=0.6, top_p=0.95
            ),
        )
        tracker = EvaluationTracker(output_dir=str(Path(tmp) / "out"), save_details=False)
        pipeline = Pipeline(
            tasks=TASKS,
            pipeline_parameters=PipelineParameters(launcher_type=ParallelismManager.NONE),
            evaluation_tracker=tracker,
            model=CannedModel(config),
        )
        pipeline.evaluate()
        pipeline.save_and_push_results()
        written = sorted((Path(tmp) / "out" / "results").rglob("results_*.json"))
        target = HERE / "lighteval"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for path in written:
            shutil.copy(path, target / path.name)
            print(f"wrote {target / path.name}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Smoke generation: load the checkpoint, greedy-decode a few chat prompts, see if it stops.

Needs torch (``pip install 'r1release[train]'``); imported only when a smoke test runs.
The model runs on the GPU in bfloat16 when CUDA is available, else on the CPU in float32.
``config.json`` and ``generation_config.json`` are read through the :class:`Checkpoint`,
so a staged copy's in-memory fixes are what is tested; the weights and the tokenizer come
from disk. Checkpoint code (``auto_map``) is never run.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from r1release.checkpoint import Checkpoint
from r1release.rules.base import as_ids


@dataclass(frozen=True)
class SmokeResult:
    prompt: str
    new_ids: tuple[int, ...]  # the generated tokens
    text: str  # the generated tokens decoded, special tokens kept
    stop_ids: tuple[int, ...]  # the EOS ids generation stopped on
    templated: bool  # the prompt went through the chat template

    @property
    def stopped(self) -> bool:
        return bool(self.new_ids) and self.new_ids[-1] in self.stop_ids

    def tail(self, chars: int = 80) -> str:
        return self.text if len(self.text) <= chars else "…" + self.text[-chars:]


class SmokeError(Exception):
    """The model could not be loaded or run; ``str()`` says why, ``hint`` what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


SMOKE_TIMEOUT_ENV = "R1RELEASE_SMOKE_TIMEOUT"


def smoke_timeout() -> float:
    """Seconds one prompt may generate for (``R1RELEASE_SMOKE_TIMEOUT``, default 300)."""
    try:
        value = float(os.environ.get(SMOKE_TIMEOUT_ENV) or 300)
    except ValueError:
        value = 300.0
    return value if value > 0 else 300.0


def smoke_generate(
    checkpoint: Checkpoint,
    prompts: Sequence[str],
    max_new_tokens: int,
    device: str | None = None,
) -> list[SmokeResult]:
    """Greedy-decode each prompt (one at a time, no padding) up to ``max_new_tokens``."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tokenizer = checkpoint.tokenizer()
    template = checkpoint.chat_template()
    model = _load_model(checkpoint, device, dtype)
    try:
        generation = _generation_config(checkpoint, model, tokenizer, max_new_tokens)
        # generate() fills unset values from model.generation_config (read from disk by
        # from_pretrained): make it this one, so an in-memory fix is not undone
        model.generation_config = generation
        stop_ids = tuple(as_ids(generation.eos_token_id))
        results = []
        for prompt in prompts:
            inputs = _encode(tokenizer, template, prompt)
            inputs = {k: v.to(device) for k, v in inputs.items() if k != "token_type_ids"}
            started = time.monotonic()
            try:
                with torch.inference_mode():
                    output = model.generate(**inputs, generation_config=generation)
            except Exception as exc:  # out of memory, a model bug, ...
                raise SmokeError(f"generation failed: {type(exc).__name__}: {_line(exc)}") from None
            new = tuple(int(i) for i in output[0, inputs["input_ids"].shape[1] :].tolist())
            stopped = bool(new) and new[-1] in stop_ids
            if not stopped and time.monotonic() - started >= generation.max_time:
                raise SmokeError(
                    f"generating for prompt {prompt[:40]!r} took more than "
                    f"{generation.max_time:g} s ({len(new)} tokens): stopped unfinished",
                    hint=f"raise {SMOKE_TIMEOUT_ENV}, lower smoke.max_new_tokens, or use a GPU",
                )
            decoded = tokenizer.decode(list(new), skip_special_tokens=False)
            results.append(SmokeResult(prompt, new, decoded, stop_ids, template is not None))
        return results
    finally:
        del model
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def _encode(tokenizer: Any, template: Any, prompt: str) -> Any:
    if template is None:
        return tokenizer(prompt, return_tensors="pt")
    try:
        text = template.render(
            tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True
        )
    except Exception as exc:  # jinja2 errors, raise_exception() in the template, a timeout
        raise SmokeError(
            f"the chat template ({template.source}) does not render the prompt: "
            f"{type(exc).__name__}: {_line(exc)}"
        ) from None
    return tokenizer(text, add_special_tokens=False, return_tensors="pt")


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


def _load_model(checkpoint: Checkpoint, device: str, dtype: Any) -> Any:
    import logging

    from transformers import CONFIG_MAPPING, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    doc = checkpoint.config or {}
    model_type = doc.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise SmokeError(f"transformers cannot build model_type {model_type!r}")
    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity(logging.ERROR)
    hf_logging.disable_progress_bar()  # "Loading weights" would interleave with the report
    try:
        config = CONFIG_MAPPING[model_type].from_dict(dict(doc))
        kwargs: dict[str, Any] = {"config": config, "dtype": dtype, "trust_remote_code": False}
        if device != "cpu":
            kwargs["device_map"] = device
        model = AutoModelForCausalLM.from_pretrained(str(checkpoint.root), **kwargs)
    except Exception as exc:
        raise SmokeError(
            f"the model does not load: {type(exc).__name__}: {_line(exc)}",
            "`r1release check --deep` compares the weights with config.json (expected-tensors)",
        ) from None
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
    return model.eval()


def _generation_config(
    checkpoint: Checkpoint, model: Any, tokenizer: Any, max_new_tokens: int
) -> Any:
    """The checkpoint's generation config, made greedy and bounded by ``max_new_tokens``."""
    from transformers import GenerationConfig

    doc = checkpoint.generation_config
    if doc is not None:
        generation = GenerationConfig.from_dict(dict(doc))
    else:  # what transformers does without generation_config.json
        generation = GenerationConfig.from_model_config(model.config)
    generation.do_sample = False
    for sampling in ("temperature", "top_p", "top_k", "min_p", "typical_p"):
        if hasattr(generation, sampling):
            setattr(generation, sampling, None)
    generation.num_beams = 1
    generation.max_new_tokens = max_new_tokens  # wins over max_length
    generation.max_time = smoke_timeout()  # per prompt: a slow model cannot hang the check
    generation.use_cache = True
    generation.stop_strings = None  # the stop tokens are what is tested
    if generation.pad_token_id is None:
        stop = as_ids(generation.eos_token_id)
        pad = tokenizer.pad_token_id
        generation.pad_token_id = pad if pad is not None else (stop[0] if stop else None)
    return generation

"""Scores that can be trusted before anything is decided or written from them.

Remote code written for transformers 4 often registers buffers (rotary `inv_freq`, cos/sin caches, `position_ids`)
as non-persistent in `__init__` and never restores them in `_init_weights`. transformers 5 builds models on the meta
device and refills such buffers with `torch.empty_like`: uninitialised memory, which sometimes holds the right values
by luck of the allocator and otherwise garbage (an `IndexError` inside the model, or NaN scores). So:

- [`load_classifier`] loads a model with torch's `fill_uninitialized_memory` on (NaN in floats, the largest integer
  in integers) for the duration of `from_pretrained`: memory that the load never wrote is then wrong every time,
  never right by luck. It refuses a tokenizer with no vocabulary (transformers 5 builds one, silently, for a folder
  without tokenizer files), and runs the model on sample texts ([`probe`]).
- [`check_finite`] stops on NaN or infinite scores; [`suspect_buffers`] names the buffers that hold the fill.
- [`check_fresh_loads`] compares the scores of two loads of the same files in fresh processes, as consumers load them,
  with this process's (remote code may depend on more than its buffers); [`guard_outputs`] checks every forward pass
  of a command's model for non-finite logits.

Every failure is a [`BrokenOutputsError`] that names the cause, the transformers release and the route that fixes
it; no command writes thresholds or decisions after one.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hubheads.errors import HubheadsError, InvalidInputError, first_line

#: What `probe` feeds the model, one at a time: two inputs of different lengths.
SAMPLE_TEXTS = ("a short post", "a longer post to classify, with a few more words in it than the first one")


class BrokenOutputsError(HubheadsError, ValueError):
    """A model whose outputs cannot be used: non-finite, load-dependent, or failing inside the model's code."""


@contextlib.contextmanager
def uninitialised_memory_filled() -> Iterator[None]:
    """Fill every tensor torch allocates without initialising (`torch.empty`, `empty_like`) with NaN (floats) or the
    largest integer (integers) while the block runs, so code that reads such memory fails deterministically."""
    import torch
    import torch.utils.deterministic

    enabled, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True  # type: ignore[attr-defined]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*deterministic.*")
            yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = fill  # type: ignore[attr-defined]
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def suspect_buffers(model: Any) -> list[str]:
    """The non-persistent buffers of `model` (those its checkpoint does not hold) whose values are the fill of
    `uninitialised_memory_filled` or otherwise not finite: `"name (module.Class, file)"` each."""
    import torch

    persistent = set(model.state_dict())
    found = []
    for name, buffer in model.named_buffers():
        if name in persistent or buffer.numel() == 0:
            continue
        if buffer.is_floating_point():
            bad = not bool(torch.isfinite(buffer).all())
        elif buffer.dtype in (torch.int64, torch.int32, torch.int16):
            bad = bool((buffer == torch.iinfo(buffer.dtype).max).any())
        else:
            bad = False
        if bad:
            owner = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            found.append(f"{name} ({type(owner).__qualname__} in {type(owner).__module__})")
    return found


def _route(config: Mapping[str, Any] | None) -> str:
    """What fixes a model whose buffers are lost on load, for the message."""
    if (config or {}).get("model_type") == "new":
        return (
            'This is gte-multilingual-base\'s "new" code (Alibaba-NLP/new-impl), which does not run on transformers '
            "5: export the checkpoint with hubheads' own implementation of the architecture, `hubheads export SRC "
            "OUT` (without --keep-remote-code), and use the exported folder."
        )
    return (
        "The model's code must set these buffers in its `_init_weights` (transformers 5 builds models on the meta "
        "device and refills non-persistent buffers only there), compute them in `forward`, or save them as "
        "persistent buffers; until then it runs on transformers 4 only."
    )


def _version() -> str:
    import transformers

    return transformers.__version__


def broken(what: str, cause: str, model: Any = None, config: Mapping[str, Any] | None = None) -> BrokenOutputsError:
    """The error for outputs that cannot be used, with the buffers that explain it when there are any."""
    buffers = suspect_buffers(model) if model is not None else []
    if buffers:
        return BrokenOutputsError(
            f"{what}: {cause} on transformers {_version()}. Uninitialised buffers after loading: "
            f"{', '.join(buffers)}. {_route(config)} No thresholds or decisions were written."
        )
    return BrokenOutputsError(
        f"{what}: {cause} on transformers {_version()}. No thresholds or decisions were written; check the model's "
        "weights and code (`hubheads verify` reads the code for buffers that transformers 5 leaves unset)."
    )


def check_finite(values: Any, what: str, model: Any = None, config: Mapping[str, Any] | None = None) -> None:
    """Raise a `BrokenOutputsError` unless every number in `values` (an array, a tensor or nested lists) is finite."""
    import numpy as np

    array = values.detach().float().cpu().numpy() if hasattr(values, "detach") else np.asarray(values, dtype=float)
    if not np.isfinite(array).all():
        count = int((~np.isfinite(array)).sum())
        raise broken(what, f"{count} of {array.size} scores are NaN or infinite", model, config)


def check_tokenizer(tokenizer: Any, what: str) -> None:
    """Refuse a tokenizer that knows no word: only special tokens (transformers 5 builds such a tokenizer, silently,
    for a folder without tokenizer files), on which every text becomes unknown tokens."""
    specials = set(getattr(tokenizer, "all_special_tokens", []) or [])
    if len(tokenizer) <= len(specials):
        raise BrokenOutputsError(
            f"{what} has a tokenizer without a vocabulary ({len(tokenizer)} tokens, all special): the folder has no "
            "tokenizer files, and transformers built an empty tokenizer that maps every word to the unknown token. "
            "Save the tokenizer of the base model into the folder (`tokenizer.save_pretrained(folder)`, or `hubheads "
            "export --tokenizer DIR`)."
        )


def probe(model: Any, tokenizer: Any, what: str, config: Mapping[str, Any] | None = None) -> Any:
    """Run `model` on `SAMPLE_TEXTS` and return its logits, or raise a `BrokenOutputsError` naming why it cannot be
    used: an error inside the model's code, or non-finite outputs."""
    import torch

    device = next(model.parameters()).device
    rows = []
    try:
        with torch.no_grad():
            for text in SAMPLE_TEXTS:  # one at a time: a tokenizer without a padding token is fine here
                encoded = tokenizer(text, truncation=True, max_length=32, return_tensors="pt")
                rows.append(model(**{key: value.to(device) for key, value in encoded.items()}).logits[0])
    except (IndexError, RuntimeError) as error:
        cause = f"the model failed on sample texts ({type(error).__name__}: {first_line(error)})"
        raise broken(what, cause, model, config) from error
    logits = torch.stack(rows).float()  # (texts, labels)
    check_finite(logits, what, model, config)
    return logits


def load_classifier(
    folder: Path, *, trust_remote_code: bool, what: str, config: Mapping[str, Any] | None = None
) -> tuple[Any, Any]:
    """`(model, tokenizer)` of the sequence classifier in `folder`, loaded with uninitialised memory filled, its
    tokenizer checked and the model probed (a `BrokenOutputsError` otherwise)."""
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        with uninitialised_memory_filled():
            model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError, SafetensorError) as error:  # files transformers cannot load, the config's checks
        raise InvalidInputError(
            f"{what} could not be loaded ({type(error).__name__}: {first_line(error)}). Pass an exported repo or a "
            "checkpoint folder saved with save_pretrained: config.json, *.safetensors weights and tokenizer files."
        ) from error
    check_tokenizer(tokenizer, what)
    probe(model.eval(), tokenizer, what, config)
    return model, tokenizer


def check_same_loads(first: Iterable[Any], second: Iterable[Any], what: str, tolerance: float = 1e-5) -> None:
    """Raise a `BrokenOutputsError` unless two loads of the same files gave the same scores (to `tolerance`)."""
    a, b = list(numbers_in(first)), list(numbers_in(second))
    worst = max((abs(x - y) for x, y in zip(a, b)), default=0.0)
    if len(a) != len(b) or not worst <= tolerance or any(math.isnan(x) for x in a + b):
        raise broken(
            what,
            f"two loads of the same files in fresh processes gave different scores (largest difference {worst:.3g}): "
            "the model depends on memory or randomness its load does not fix",
        )


def guard_outputs(model: Any, what: str, config: Mapping[str, Any] | None = None) -> Any:
    """Check every output of `model` for non-finite logits from now on (a forward hook); return the hook's handle.

    A NaN probability passes no threshold, so without it a multi-label model would answer with empty sets."""

    def check(module: Any, inputs: Any, output: Any) -> None:
        logits = output.logits if hasattr(output, "logits") else output[0]
        check_finite(logits, what, model, config)

    return model.register_forward_hook(check)


# Runs in a fresh interpreter, as a consumer loads the model: no fill of uninitialised memory, nothing shared.
_FRESH_LOAD_SCRIPT = r"""
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, texts = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
try:
    with torch.no_grad():
        encoded = [tokenizer(text, truncation=True, max_length=32, return_tensors="pt") for text in texts]
        rows = [model(**inputs).logits[0] for inputs in encoded]
        result = {"logits": torch.stack(rows).float().tolist()}
except Exception as error:
    result = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
print("hubheads-scores: " + json.dumps(result))
"""


def check_fresh_loads(
    folder: Path, logits: Any, what: str, config: Mapping[str, Any] | None = None, loads: int = 2
) -> None:
    """Load the model in `folder` in `loads` fresh processes as a consumer does (remote code trusted) and check that
    each gives `logits` (this process's scores of `SAMPLE_TEXTS`), to 1e-5; a `BrokenOutputsError` otherwise."""
    import json
    import os
    import subprocess
    import sys

    expected = logits.detach().float().tolist() if hasattr(logits, "detach") else logits
    for _ in range(loads):
        completed = subprocess.run(
            [sys.executable, "-c", _FRESH_LOAD_SCRIPT, str(folder), json.dumps(list(SAMPLE_TEXTS))],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"},
            timeout=900,
        )
        marker = "hubheads-scores: "
        lines = [line[len(marker) :] for line in completed.stdout.splitlines() if line.startswith(marker)]
        if completed.returncode != 0 or not lines:
            tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
            raise broken(what, f"a fresh load failed ({tail})", config=config)
        result = json.loads(lines[-1])
        if "error" in result:
            raise broken(what, f"a fresh load failed on sample texts ({result['error']})", config=config)
        check_finite(result["logits"], what, config=config)
        check_same_loads(expected, result["logits"], what)


def decisions_of(outputs: Sequence[Any]) -> list[Any]:
    """Each input's decision in a pipeline's outputs (one per input): a label, a sorted set of labels (multi-label),
    or (label, every head's label)."""
    decisions: list[Any] = []
    for output in outputs:
        if isinstance(output, list):
            decisions.append(tuple(sorted(item["label"] for item in output)))
        elif output.get("tasks"):
            decisions.append((output["label"], *(head["label"] for head in output["tasks"].values())))
        else:
            decisions.append(output["label"])
    return decisions


def numbers_in(values: Any) -> Iterator[float]:
    """Every number in nested lists and dicts (pipeline outputs), in a fixed order (dict keys sorted)."""
    if isinstance(values, Mapping):
        for key in sorted(values):
            yield from numbers_in(values[key])
    elif isinstance(values, (list, tuple)):
        for value in values:
            yield from numbers_in(value)
    elif isinstance(values, (int, float)) and not isinstance(values, bool):
        yield float(values)


__all__ = [
    "BrokenOutputsError",
    "SAMPLE_TEXTS",
    "broken",
    "check_finite",
    "check_fresh_loads",
    "check_same_loads",
    "check_tokenizer",
    "decisions_of",
    "guard_outputs",
    "load_classifier",
    "numbers_in",
    "probe",
    "suspect_buffers",
    "uninitialised_memory_filled",
]

"""Faster precisions on CPU, offered with their evidence: how many of the author's tuned decisions each one changes.

float32 is the reference. bfloat16 (`model.to(torch.bfloat16)`; fast where the CPU has AVX512-BF16 or AMX, often
slower elsewhere) and dynamic int8 (`torch.ao.quantization.quantize_dynamic` of the `nn.Linear` layers) shift the
scores a little, and a score near its threshold can cross it. [`measure_precisions`] runs the tuned pipeline over the
dev set at each precision the machine can run, and compares each one's decisions with float32's: `tune` records the
result in reports.json (`precisions`), and the card shows it with the consumer's call for each. Probabilities are
always computed in float32 from the logits (the pipeline casts them).
"""

from __future__ import annotations

import contextlib
import copy
import platform
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hubheads.errors import InvalidInputError
from hubheads_cli.defaults import PRECISIONS  # noqa: F401  (shown by `hubheads score --help`)

#: Where `tune` writes the speeds it measured: apart from reports.json, which the same data and seed reproduce byte for
#: byte (a speed never repeats).
SPEED_FILE = "precision_speeds.json"
#: The keys of a measurement that are timings.
TIMINGS = ("seconds", "speed_vs_float32")


def split_timings(measured: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`measure_precisions`' result as (what the same dev set reproduces: decisions, scores, metric, CPU; the
    timings), for reports.json and `SPEED_FILE`."""
    kept, speeds = {}, {}
    for precision, entry in measured.items():
        if precision in PRECISIONS and isinstance(entry, dict):
            kept[precision] = {key: value for key, value in entry.items() if key not in TIMINGS}
            speeds[precision] = {key: entry[key] for key in TIMINGS if key in entry}
        else:
            kept[precision] = entry
    return kept, speeds


#: The CPU flags that decide what bfloat16 and int8 cost (from /proc/cpuinfo on Linux).
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


def cpu_flags() -> dict[str, Any]:
    """The CPU's model name and which of `CPU_FLAGS` it has (empty flags where /proc/cpuinfo does not exist)."""
    info = Path("/proc/cpuinfo")
    text = info.read_text(errors="replace") if info.is_file() else ""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and not flags:
            flags = set(value.split())
        if key.strip() == "model name":
            model = value.strip()
    return {"model": model, **{flag: flag in flags for flag in CPU_FLAGS}}


def check_precision(precision: str) -> str:
    """`precision` if it is one of `PRECISIONS`; a `ValueError` naming the option otherwise."""
    if precision not in PRECISIONS:
        raise InvalidInputError(f"--precision must be one of {list(PRECISIONS)}, got {precision!r}.")
    return precision


def int8_supported() -> bool:
    """Whether this torch has a CPU engine for dynamic int8 (`x86`/`fbgemm` on x86, `qnnpack` on ARM)."""
    import torch

    return bool(torch.backends.quantized.supported_engines) and torch.backends.quantized.engine != "none"


def at_precision(model: Any, precision: str) -> Any:
    """A copy of `model` (float32) at `precision`: the model itself for float32, `.to(torch.bfloat16)` for bfloat16,
    its `nn.Linear` layers quantized to dynamic int8 for int8."""
    import torch

    check_precision(precision)
    if precision == "float32":
        return model
    converted = copy.deepcopy(model)
    if precision == "bfloat16":
        return converted.to(torch.bfloat16)
    return torch.ao.quantization.quantize_dynamic(converted, {torch.nn.Linear}, dtype=torch.qint8)


def use_precision(classifier: Any, precision: str) -> Any:
    """Run the hubheads pipeline `classifier` at `precision` from now on (its model converted by `at_precision`, every
    forward pass checked for non-finite logits); return it."""
    from hubheads.output_checks import guard_outputs

    check_precision(precision)
    if precision != "float32":
        if precision == "int8" and not int8_supported():
            raise InvalidInputError(
                "--precision int8: this torch has no CPU engine for dynamic int8; use float32 or bfloat16."
            )
        classifier.model = at_precision(classifier.model, precision)
        guard_outputs(classifier.model, f"the model at {precision}")
    return classifier


@contextlib.contextmanager
def quiet_precision_warnings() -> Iterator[None]:
    """No `PrecisionWarning` inside the block: where hubheads changes the precision on purpose (tune, measuring)."""
    from hubheads.modeling.pipeline_hubheads import PrecisionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        yield


def precision_record(tuned_precision: str, reports: dict[str, Any]) -> Any:
    """config.json's `PrecisionRecord`: the precision the thresholds were tuned at, and the decisions each measured
    precision changed against float32 on the dev set (reports.json's `precisions`)."""
    from hubheads.modeling.configuration_hubheads import PrecisionRecord

    measured = reports.get("precisions") or {}
    agreement = {
        precision: (entry["decisions_differ"], entry["rows"])
        for precision, entry in measured.items()
        if precision in PRECISIONS and precision != "float32" and "decisions_differ" in entry
    }
    return PrecisionRecord(tuned_precision=tuned_precision, agreement=agreement)


def _scores(outputs: Sequence[Any]) -> list[float]:
    """The primary score of each input (its label's probability; a multi-label input's highest, or 0)."""
    return [
        (max((item["score"] for item in output), default=0.0) if isinstance(output, list) else output["score"])
        for output in outputs
    ]


def measure_precisions(
    classifier: Any,
    items: list[Any],
    *,
    batch_size: int,
    metric: Callable[[list[Any]], float] | None = None,
    precisions: Sequence[str] = PRECISIONS,
) -> dict[str, Any]:
    """Run `classifier` (the hubheads pipeline of a float32 model, with its tuned thresholds) over `items` at each of
    `precisions` and compare its decisions with float32's.

    Returns:
        `dict`: `cpu` (`cpu_flags()`) and, per precision, `rows`, `decisions_differ` (against float32),
        `max_abs_score_diff`, `seconds`, `speed_vs_float32` and, with `metric` (decisions -> the tuning metric),
        `metric`; a precision the machine cannot run has `skipped` with the reason instead.
    """
    from hubheads.output_checks import decisions_of, guard_outputs

    original = classifier.model
    results: dict[str, Any] = {"cpu": cpu_flags()}
    reference: dict[str, Any] = {}
    try:
        for precision in ("float32", *[p for p in precisions if p != "float32"]):
            if precision == "int8" and not int8_supported():
                results[precision] = {"skipped": "this torch has no CPU engine for dynamic int8"}
                continue
            classifier.model = at_precision(original, precision)
            if precision != "float32":
                guard_outputs(classifier.model, f"the model at {precision}")
            start = time.perf_counter()
            with quiet_precision_warnings():  # each precision on purpose
                outputs = classifier(items, batch_size=batch_size)
            seconds = time.perf_counter() - start
            decisions, scores = decisions_of(outputs), np.array(_scores(outputs))
            if precision == "float32":
                reference = {"decisions": decisions, "scores": scores, "seconds": seconds}
            entry = {
                "rows": len(items),
                "decisions_differ": sum(a != b for a, b in zip(decisions, reference["decisions"])),
                "max_abs_score_diff": float(np.abs(scores - reference["scores"]).max()) if len(items) else 0.0,
                "seconds": round(seconds, 3),
                "speed_vs_float32": round(reference["seconds"] / seconds, 2) if seconds else None,
            }
            if metric is not None:
                entry["metric"] = metric(decisions)
            results[precision] = entry
    finally:
        classifier.model = original
    return results


#: How a consumer runs the repo at each precision (`{model}` is the repo id; `torch_dtype=` before transformers 4.56).
CALLS = {
    "float32": 'clf = pipeline("text-classification", model="{model}", trust_remote_code=True)',
    "bfloat16": 'clf = pipeline("text-classification", model="{model}", trust_remote_code=True, dtype=torch.bfloat16)',
    "int8": "clf.model = torch.ao.quantization.quantize_dynamic(clf.model, {{torch.nn.Linear}}, dtype=torch.qint8)",
}


def precision_lines(precisions: dict[str, Any], metric: str, speeds: dict[str, Any] | None = None) -> list[str]:
    """One line per measured precision, as `tune` prints them."""
    lines = []
    for precision in PRECISIONS:
        entry = {**(precisions.get(precision) or {}), **((speeds or {}).get(precision) or {})}
        if "skipped" in entry:
            lines.append(f"  {precision:<9} skipped: {entry['skipped']}")
        elif entry:
            lines.append(
                f"  {precision:<9} {entry['decisions_differ']} of {entry['rows']} dev decisions differ from float32; "
                f"{metric} {entry.get('metric', float('nan')):.4f}; "
                f"{entry.get('speed_vs_float32', '?')}x float32's speed here"
            )
    return lines


__all__ = [
    "CALLS",
    "CPU_FLAGS",
    "precision_lines",
    "PRECISIONS",
    "SPEED_FILE",
    "at_precision",
    "check_precision",
    "cpu_flags",
    "measure_precisions",
]

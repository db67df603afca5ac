"""One pipeline shared between threads, as a web server shares it, gives every caller what a sequential call gives.

A fast tokenizer's truncation and padding are settings of the one Rust tokenizer that every call first sets and then
encodes with, so a call that measures lengths without truncation, run while another thread tokenizes with it, used to
hand a text longer than the model's positions to the embeddings (`index out of range`) or a batch of mixed lengths to
the model (a size mismatch). Each test here runs 8 threads of mixed long and short inputs, lists with `batch_size` and
single calls, on one configured model kind, and compares every result with the sequential one.
"""

from __future__ import annotations

import sys
import threading

import pytest
import tiny

from hubheads import HubheadsTextClassificationPipeline

THREADS = 8
ROUNDS = 4
SHORT = tiny.sample_texts(12, seed=21)
LONG = tiny.sample_texts(6, seed=22, min_words=80, max_words=120)  # past every tiny model's positions


KINDS = {
    "thresholds-by-lang": (
        tiny.build_thresholded_by_lang,
        {"lang": "it"},
    ),  # "it 0", "it 1", ...: unknown languages, global threshold
    "multi-label": (tiny.build_multi_label, {}),
    "multi-task": (tiny.build_residual_type_fusion, {}),
    "gated-bio": (lambda: tiny.build_gated_bio(use_bio=True), {"bio": "bio"}),
    "configures-nothing": (tiny.build_model, {}),  # the stock path takes the same lock
}


def _calls(kind_kwargs: dict) -> list[tuple]:
    """Lists (length-sorted in batches of 4, the per-input argument as a list) and single calls, long and short
    inputs mixed."""
    calls: list[tuple] = []
    for start in range(0, len(SHORT), 4):
        texts = SHORT[start : start + 4] + LONG[start // 4 : start // 4 + 2]
        per_input = {
            key: [f"{value} {i}" if key == "bio" else value for i in range(len(texts))]  # one bio per author
            for key, value in kind_kwargs.items()
        }
        calls.append((texts, {"batch_size": 4, **per_input}))
    for text in SHORT[:3] + LONG[:3]:
        calls.append((text, dict(kind_kwargs)))
    return calls


@pytest.fixture(autouse=True)
def _switch_threads_often():
    """Let the interpreter switch threads every microsecond instead of every 5 ms, so the calls interleave inside
    each other's tokenizer calls far more often than a server's would: a race shows up in every run, not one in ten."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def _rounded(result):
    if isinstance(result, list):
        return [_rounded(item) for item in result]
    if isinstance(result, dict):
        return {key: _rounded(value) for key, value in result.items()}
    return round(result, 5) if isinstance(result, float) else result


@pytest.mark.parametrize("kind", KINDS)
def test_one_pipeline_shared_by_8_threads_gives_the_sequential_results(kind):
    build, kind_kwargs = KINDS[kind]
    clf = HubheadsTextClassificationPipeline(model=build(), tokenizer=tiny.build_tokenizer())
    calls = _calls(kind_kwargs)
    expected = [_rounded(clf(inputs, **kwargs)) for inputs, kwargs in calls]
    failures: list[str] = []
    start = threading.Barrier(THREADS)

    def worker(offset: int) -> None:
        start.wait()
        for round_ in range(ROUNDS):
            for step in range(len(calls)):
                index = (offset + round_ + step) % len(calls)  # threads run different calls at the same time
                inputs, kwargs = calls[index]
                try:
                    result = _rounded(clf(inputs, **kwargs))
                except Exception as error:  # noqa: BLE001 - every failure is collected and reported
                    failures.append(f"call {index}: {type(error).__name__}: {error}")
                    continue
                if result != expected[index]:
                    failures.append(f"call {index}: {result} != {expected[index]}")

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, f"{len(failures)} of {THREADS * ROUNDS * len(calls)} calls differ:\n" + "\n".join(
        failures[:5]
    )

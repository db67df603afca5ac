"""Stock parity of the hubheads pipeline on models that configure nothing.

Two kinds of check, each comparing a candidate class with transformers' own `TextClassificationPipeline` on the same
model and tokenizer (outputs equal, scores to 1e-6, or the same exception class):

- `transformers_checks`: transformers' own text-classification pipeline tests (`test_small_model_pt`,
  `run_pipeline_test`, the common `run_batch_test`, device and dtype variants), rewritten for the tiny local models;
- `differential`: call shapes x call arguments x model kinds, so that any new divergence fails loudly.

It runs in-process (tests/test_stock_parity.py: stock against `hubheads.HubheadsTextClassificationPipeline`) and as a
script in a consumer's interpreter without hubheads, against the copy an exported repo ships, loaded by the stock
`pipeline(..., trust_remote_code=True)` (`python tests/parity.py REPO_DIR` prints a JSON report). It imports only the
standard library, torch, transformers and tests/tiny.py.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import TextClassificationPipeline

sys.path.insert(0, str(Path(__file__).parent))
import tiny  # noqa: E402

TEXTS = tiny.sample_texts(6, seed=7)
#: 22 tokens: within every tiny model's positions (32 for XLM-R), past the 16 of the short tokenizer.
LONGER_THAN_TOKENIZER = " ".join(tiny.WORDS[4:24])


def _bert_with_token_types():
    tokenizer = tiny.build_tokenizer(model_input_names=("input_ids", "token_type_ids", "attention_mask"))
    return tiny.build_model("bert", 2), tokenizer


#: The model kinds compared: every head a sequence classifier can have, and tokenizers with and without limits.
MODEL_KINDS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "distilbert-binary": lambda: (tiny.build_model("distilbert", 2), tiny.build_tokenizer()),
    "bert-one-logit": lambda: (tiny.build_model("bert", 1), tiny.build_tokenizer()),
    "bert-regression": lambda: (tiny.build_model("bert", 1, problem_type="regression"), tiny.build_tokenizer()),
    "xlmr-four-classes": lambda: (tiny.build_model("xlm-roberta", 4), tiny.build_tokenizer()),
    "custom-id2label": lambda: (
        tiny.build_model(
            "distilbert", 3, id2label={0: "neg", 1: "neu", 2: "pos"}, label2id={"neg": 0, "neu": 1, "pos": 2}
        ),
        tiny.build_tokenizer(),
    ),
    "tokenizer-limit-16": lambda: (tiny.build_model("bert", 2), tiny.build_tokenizer(model_max_length=16)),
    "bert-token-types": _bert_with_token_types,
}


class _TextDataset(torch.utils.data.Dataset):
    """A map-style torch dataset of texts, which the stock pipeline streams."""

    def __init__(self, texts: list[str]):
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> str:
        return self.texts[index]


#: Input shapes, valid and not (a factory each: generators are used up by one call).
SHAPES: dict[str, Callable[[], Any]] = {
    "string": lambda: TEXTS[0],
    "empty-string": lambda: "",
    "past-tokenizer-limit": lambda: LONGER_THAN_TOKENIZER,
    "list": lambda: TEXTS[:5],
    "list-of-one": lambda: [TEXTS[0]],
    "empty-list": lambda: [],
    "tuple": lambda: tuple(TEXTS[:3]),
    "pair-dict": lambda: {"text": TEXTS[0], "text_pair": TEXTS[1]},
    "text-dict": lambda: {"text": TEXTS[2]},
    "dict-list": lambda: [{"text": TEXTS[0], "text_pair": TEXTS[1]}, {"text": TEXTS[2]}],
    "dict-extra-key": lambda: {"text": TEXTS[0], "label": 1},
    "dataset-rows": lambda: [{"text": text, "label": 0, "id": i} for i, text in enumerate(TEXTS[:3])],
    "dict-without-text": lambda: {"text_pair": TEXTS[0]},
    "dict-non-string-text": lambda: {"text": 5},
    "legacy-pair": lambda: [[[TEXTS[0], TEXTS[1]]]],
    "legacy-pairs": lambda: [[[TEXTS[0], TEXTS[1]]], [[TEXTS[2], TEXTS[3]]]],
    "pair-as-list": lambda: [[TEXTS[0], TEXTS[1]]],
    "nested-list": lambda: [[TEXTS[0]]],
    "generator": lambda: (text for text in TEXTS[:5]),
    "iterator": lambda: iter(TEXTS[:3]),
    "torch-dataset": lambda: _TextDataset(TEXTS[:4]),
    "none": lambda: None,
    "number": lambda: 5,
    "bytes": lambda: b"hello world",
    "list-with-none": lambda: [TEXTS[0], None],
    "list-with-number": lambda: [TEXTS[0], 3],
}

#: Call arguments: the stock ones with valid and odd values, and tokenizer arguments the stock pipeline passes on.
ARGUMENTS: dict[str, dict[str, Any]] = {
    "no-arguments": {},
    "top_k=1": {"top_k": 1},
    "top_k=2": {"top_k": 2},
    "top_k=None": {"top_k": None},
    "top_k=0": {"top_k": 0},
    "top_k=-1": {"top_k": -1},
    "top_k=True": {"top_k": True},
    "top_k=1.5": {"top_k": 1.5},
    "top_k='2'": {"top_k": "2"},
    "top_k=99": {"top_k": 99},
    "sigmoid": {"function_to_apply": "sigmoid", "top_k": None},
    "softmax": {"function_to_apply": "softmax"},
    "no-function": {"function_to_apply": "none", "top_k": None},
    "SOFTMAX": {"function_to_apply": "SOFTMAX"},
    "unknown-function": {"function_to_apply": "tanh"},
    "batch_size=1": {"batch_size": 1},
    "batch_size=2": {"batch_size": 2},
    "batch_size=3,top_k=None": {"batch_size": 3, "top_k": None},
    "batch_size='4'": {"batch_size": "4"},
    "truncation=True": {"truncation": True},
    "truncation=False": {"truncation": False},
    "truncation=only_first": {"truncation": "only_first"},
    "max_length=8": {"max_length": 8},
    "truncation,max_length=8": {"truncation": True, "max_length": 8},
    "padding=max_length,max_length=16": {"padding": "max_length", "max_length": 16},
    "padding=True": {"padding": True},
    "padding=longest,batch_size=2": {"padding": "longest", "batch_size": 2},
    "return_all_scores=True": {"return_all_scores": True},
    "return_all_scores=False": {"return_all_scores": False},
    "add_special_tokens=False": {"add_special_tokens": False},
}

#: The rest of the product is sampled along these: every shape with these arguments, every argument with these shapes.
CORE_ARGUMENTS = ("no-arguments", "top_k=None", "top_k=2", "batch_size=2")
CORE_SHAPES = ("string", "list", "pair-dict", "generator", "legacy-pair")
#: The kind whose product is complete.
FULL_KIND = "distilbert-binary"


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """`("ok", output)` with streamed outputs drained, or `("error", exception)`."""
    try:
        result = call()
        if isinstance(result, Iterator):
            result = list(result)
        return "ok", result
    except Exception as error:  # the exception class is what is compared
        return "error", error


def differs(stock: tuple[str, Any], other: tuple[str, Any]) -> str | None:
    """How `other` differs from the stock outcome, or `None`: equal outputs (scores to 1e-6), or an exception that
    is an instance of the stock one's class."""
    if stock[0] == "error":
        if other[0] == "error" and isinstance(other[1], type(stock[1])):
            return None
        return f"stock raised {type(stock[1]).__name__}({str(stock[1])[:100]!r}), got {_describe(other)}"
    if other[0] == "error":
        return f"stock answered {str(stock[1])[:100]}, got {_describe(other)}"
    if not _equal(stock[1], other[1]):
        return f"stock answered {str(stock[1])[:160]}, got {str(other[1])[:160]}"
    return None


def _describe(result: tuple[str, Any]) -> str:
    if result[0] == "error":
        return f"{type(result[1]).__name__}({str(result[1])[:100]!r})"
    return str(result[1])[:160]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def combinations() -> Iterator[tuple[str, str, str]]:
    """(model kind, shape, arguments): the whole product for `FULL_KIND`, the core cross for every other kind."""
    for kind in MODEL_KINDS:
        for shape in SHAPES:
            for arguments in ARGUMENTS:
                if kind == FULL_KIND or arguments in CORE_ARGUMENTS or shape in CORE_SHAPES:
                    yield kind, shape, arguments


def differential(candidate: type, shapes: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every combination (or those of `shapes`) through the stock class and `candidate` on the same model; the calls
    made and every difference, as `"kind | shape | arguments: ..."`."""
    mismatches, calls, pipelines = [], 0, {}
    for kind, shape, arguments in combinations():
        if shapes is not None and shape not in shapes:
            continue
        if kind not in pipelines:
            model, tokenizer = MODEL_KINDS[kind]()
            pipelines[kind] = (
                TextClassificationPipeline(model=model, tokenizer=tokenizer),
                candidate(model=model, tokenizer=tokenizer),
            )
        stock, other = pipelines[kind]
        kwargs = ARGUMENTS[arguments]
        difference = differs(
            outcome(lambda: stock(SHAPES[shape](), **kwargs)), outcome(lambda: other(SHAPES[shape](), **kwargs))
        )
        calls += 1
        if difference:
            mismatches.append(f"{kind} | {shape} | {arguments}: {difference}")
    return {"calls": calls, "mismatches": mismatches}


# transformers' own tests, rewritten: tests/pipelines/test_pipelines_text_classification.py and the common
# `run_batch_test` of tests/test_pipeline_mixin.py. Each check runs on the candidate and on the stock class with the
# same model and asserts both what transformers' test asserts and that the two agree.


def _label_and_score(item: Any, id2label: dict) -> bool:
    return (
        isinstance(item, dict)
        and set(item) == {"label", "score"}
        and item["label"] in id2label.values()
        and isinstance(item["score"], float)
    )


def _agree(stock: TextClassificationPipeline, other: Any, inputs: Callable[[], Any], **kwargs: Any) -> Any:
    """`other`'s output for `inputs()`, asserted equal to the stock output (or the same exception class)."""
    want, got = outcome(lambda: stock(inputs(), **kwargs)), outcome(lambda: other(inputs(), **kwargs))
    difference = differs(want, got)
    assert difference is None, difference
    if got[0] == "error":
        raise got[1]
    return got[1]


def check_small_model(candidate: type, dtype: torch.dtype | None = None, device: str | None = None) -> None:
    """`test_small_model_pt` (and its device and dtype variants) on a tiny binary DistilBERT."""
    model = tiny.build_model("distilbert", 2)
    if dtype is not None:
        model = model.to(dtype)
    tokenizer = tiny.build_tokenizer()
    extra = {"device": device} if device else {}
    stock = TextClassificationPipeline(model=model, tokenizer=tokenizer, **extra)
    ours = candidate(model=model, tokenizer=tokenizer, **extra)
    id2label = model.config.id2label

    outputs = _agree(stock, ours, lambda: "This is great !")
    assert isinstance(outputs, list) and len(outputs) == 1 and _label_and_score(outputs[0], id2label)
    outputs = _agree(stock, ours, lambda: "This is great !", top_k=2)
    assert len(outputs) == 2 and all(_label_and_score(item, id2label) for item in outputs)
    assert outputs[0]["score"] >= outputs[1]["score"]
    outputs = _agree(stock, ours, lambda: ["This is great !", "This is bad"], top_k=2)
    assert len(outputs) == 2 and all(len(row) == 2 for row in outputs)
    outputs = _agree(stock, ours, lambda: "This is great !", top_k=1)
    assert len(outputs) == 1 and _label_and_score(outputs[0], id2label)
    # The legacy `return_all_scores`: honoured by 4.x, passed on to the tokenizer (and ignored) by 5.x.
    for value in (False, True):
        _agree(stock, ours, lambda: "This is great !", return_all_scores=value)
        _agree(stock, ours, lambda: ["This is great !", "Something else"], return_all_scores=value)


def check_pipeline_on(candidate: type, kind: str) -> None:
    """`run_pipeline_test` on one model kind."""
    model, tokenizer = MODEL_KINDS[kind]()
    stock = TextClassificationPipeline(model=model, tokenizer=tokenizer)
    ours = candidate(model=model, tokenizer=tokenizer)
    id2label = model.config.id2label

    outputs = _agree(stock, ours, lambda: "HuggingFace is in")
    assert len(outputs) == 1 and _label_and_score(outputs[0], id2label)
    valid = ["HuggingFace is in ", "Paris is in France"]
    outputs = _agree(stock, ours, lambda: valid)
    assert len(outputs) == 2 and all(_label_and_score(item, id2label) for item in outputs)
    outputs = _agree(stock, ours, lambda: valid, top_k=None)  # every label, not the legacy format
    assert [len(row) for row in outputs] == [len(id2label)] * 2
    assert all(_label_and_score(item, id2label) for row in outputs for item in row)
    outputs = _agree(stock, ours, lambda: {"text": valid[0], "text_pair": valid[1]})
    assert _label_and_score(outputs, id2label)
    try:  # a pair as a plain list is refused: the tokenizer would not read it as a pair
        _agree(stock, ours, lambda: [valid])
    except ValueError:
        pass
    else:
        raise AssertionError("[[text, pair]] must raise ValueError")
    outputs = _agree(stock, ours, lambda: [[valid]])  # the old pair form, kept for backward compatibility
    assert len(outputs) == 1 and _label_and_score(outputs[0], id2label)


def check_batching(candidate: type) -> None:
    """The common `run_batch_test`: ten examples from a generator in batches of four (an unfinished last batch), and
    a `__call__` with one input parameter, which is what that test streams a generator into."""
    model, tokenizer = MODEL_KINDS["xlmr-four-classes"]()
    stock = TextClassificationPipeline(model=model, tokenizer=tokenizer)
    ours = candidate(model=model, tokenizer=tokenizer)
    examples = ["HuggingFace is in", "This is another test"]
    parameters = [name for name in inspect.signature(ours.__call__).parameters if name != "kwargs"]
    assert parameters == ["inputs"], parameters
    outputs = _agree(stock, ours, lambda: (examples[i % 2] for i in range(10)), batch_size=4)
    assert len(outputs) == 10


def transformers_checks(candidate: type) -> dict[str, Callable[[], None]]:
    """The ported tests, by name, ready to run against `candidate`."""
    checks: dict[str, Callable[[], None]] = {
        "small_model": lambda: check_small_model(candidate),
        "accepts_torch_device": lambda: check_small_model(candidate, device="cpu"),
        "accepts_torch_bf16": lambda: check_small_model(candidate, dtype=torch.bfloat16),
        "accepts_torch_fp16": lambda: check_small_model(candidate, dtype=torch.float16),
        "batching": lambda: check_batching(candidate),
    }
    for kind in MODEL_KINDS:
        checks[f"pipeline_test[{kind}]"] = lambda kind=kind: check_pipeline_on(candidate, kind)
    return checks


def run_all(candidate: type) -> dict[str, Any]:
    """Both kinds of check against `candidate`: the report the script prints."""
    failures, checks = {}, transformers_checks(candidate)
    for name, check in checks.items():
        try:
            check()
        except Exception as error:
            failures[name] = f"{type(error).__name__}: {error}"
    import transformers

    return {
        "transformers": transformers.__version__,
        "candidate": f"{candidate.__module__}.{candidate.__name__}",
        "transformers_checks": len(checks),
        "failures": failures,
        **differential(candidate),
    }


def main(repo_dir: str) -> None:
    """Load the pipeline class `repo_dir` declares through the stock `pipeline(..., trust_remote_code=True)` and
    print `run_all`'s report as JSON."""
    sys.modules["hubheads"] = None  # the class that runs must be the repo's copy, even where hubheads is installed
    from transformers import pipeline
    from transformers.utils import logging

    logging.set_verbosity_error()  # the tokenizer names every argument it ignores, once per call
    candidate = type(pipeline("text-classification", model=repo_dir, trust_remote_code=True))
    print(json.dumps(run_all(candidate)))


if __name__ == "__main__":
    main(sys.argv[1])

"""On a model that configures nothing, the hubheads pipeline is the stock `TextClassificationPipeline`.

transformers' own text-classification pipeline tests and the differential test of tests/parity.py run against the
installed class here, and against the copy an exported repo ships, loaded by the stock
`pipeline(..., trust_remote_code=True)` in a fresh process under every release of the matrix. The differences README
lists ("Differences from the stock pipeline") are tested row by row at the end of this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import parity
import pytest
import tiny
import transformers
from transformers import TextClassificationPipeline

from hubheads import HubheadsTextClassificationPipeline, PipelineInputError, export_model
from hubheads.offline_hub import run_consumer_process

TEXTS = tiny.sample_texts(6, seed=3)
#: Stock's answers to `[]` and to a dict with keys other than `text`/`text_pair` changed with 5.0 (the floors'
#: environment runs this file under 4.46.1).
STOCK_5 = int(transformers.__version__.split(".")[0]) >= 5


@pytest.fixture(autouse=True)
def _quiet_tokenizer():
    """The tokenizer logs every argument it ignores (the odd calls of the differential test pass many)."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    yield
    logging.set_verbosity(verbosity)


@pytest.mark.parametrize("name", list(parity.transformers_checks(HubheadsTextClassificationPipeline)))
def test_transformers_own_pipeline_tests(name):
    parity.transformers_checks(HubheadsTextClassificationPipeline)[name]()


def test_every_call_shape_argument_and_model_kind_gives_the_stock_outcome():
    report = parity.differential(HubheadsTextClassificationPipeline)
    assert report["calls"] > 2000
    assert report["mismatches"] == []


def test_the_differential_test_sees_a_divergence():
    """A class that differs in one corner (tuples as lists, as hubheads once did) is caught there and nowhere else."""

    class TuplesAsLists(TextClassificationPipeline):
        def __call__(self, inputs, **kwargs):
            return super().__call__(list(inputs) if isinstance(inputs, tuple) else inputs, **kwargs)

    mismatches = parity.differential(TuplesAsLists, shapes=("string", "list", "tuple", "generator"))["mismatches"]
    assert mismatches and all(" | tuple | " in line for line in mismatches)


@pytest.fixture(scope="module")
def shipped_pipeline(tmp_path_factory) -> Path:
    """A repo that ships the hubheads pipeline (a thresholded export), whose copy the consumer loads."""
    tmp = tmp_path_factory.mktemp("parity")
    export_model(tiny.build_model(), tmp / "repo", tokenizer=tiny.build_tokenizer(), threshold=0.6)
    return tmp / "repo"


@pytest.mark.consumer
def test_the_repo_copy_matches_the_stock_pipeline_on_every_release(shipped_pipeline, release_python, tmp_path):
    arguments = [str(Path(parity.__file__)), str(shipped_pipeline)]
    completed = run_consumer_process(arguments, tmp_path / "hf_home", python=release_python)
    report = json.loads(completed.stdout)
    assert report["candidate"].startswith("transformers_modules."), report["candidate"]
    assert report["transformers_checks"] == len(parity.transformers_checks(HubheadsTextClassificationPipeline))
    assert report["failures"] == {}
    assert report["calls"] > 2000 and report["mismatches"] == []


# The rows of README's "Differences from the stock pipeline", one test each.


@pytest.mark.filterwarnings("ignore:`max_length` is ignored")  # the tokenizer's word on `padding=True`
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"truncation": True}, {"padding": "max_length", "max_length": 16}, {"max_length": 40, "padding": True}],
    ids=["default", "truncation", "padding-max_length", "max_length-past-positions"],
)
def test_row_inputs_longer_than_the_model_are_truncated_where_stock_crashes(kwargs):
    stock, ours = tiny.stock_and_hubheads(
        tiny.build_model("xlm-roberta")
    )  # 32 usable positions, a tokenizer without a limit
    long_text = " ".join(tiny.WORDS * 3)
    with pytest.raises((IndexError, RuntimeError)):
        stock(long_text, **kwargs)
    fitting = " ".join(long_text.split()[:30])  # 30 words + [CLS] + [SEP] = 32 positions
    assert ours(long_text, **kwargs) == ours(fitting, **kwargs)
    assert ours(long_text) == stock(fitting)
    with pytest.raises((IndexError, RuntimeError)):
        ours(long_text, truncation=False)  # the stock behaviour, on request


def test_row_inputs_the_model_does_not_take_are_dropped():
    tokenizer = tiny.build_tokenizer(model_input_names=("input_ids", "token_type_ids", "attention_mask"))
    stock, ours = tiny.stock_and_hubheads(tiny.build_model("distilbert"), tokenizer)
    clean_stock, _ = tiny.stock_and_hubheads(tiny.build_model("distilbert"))
    try:
        assert stock(TEXTS) == clean_stock(TEXTS)  # transformers 5: DistilBERT's forward swallows **kwargs
    except TypeError as error:  # transformers 4.x: the stock pipeline crashes on the extra input
        assert "token_type_ids" in str(error)
    assert ours(TEXTS) == clean_stock(TEXTS)


def _thresholded():
    model = tiny.build_model()
    model.config.best_threshold_global = 0.6
    return model


@pytest.mark.parametrize(
    "inputs, kwargs, match",
    [
        ({"text": TEXTS[0], "label": 1}, {}, "'text' key"),
        ([TEXTS[0], None], {}, "Each input must be"),
        (5, {}, "Inputs must be"),
        ([[TEXTS[0], TEXTS[1]]], {}, '"text_pair"'),
        (TEXTS, {"top_k": -1}, "`top_k`"),
        (TEXTS, {"top_k": 1.5}, "`top_k`"),
        (TEXTS, {"top_k": "2"}, "`top_k`"),
        (TEXTS, {"top_k": True}, "`top_k`"),
        (TEXTS, {"batch_size": "4"}, "`batch_size`"),
        (TEXTS, {"batch_size": 0}, "`batch_size`"),
        ("abc\ud800def", {}, "lone surrogate"),
        ({"text": TEXTS[0], "text_pair": "x\udfff"}, {}, "lone surrogate"),
        (TEXTS, {"function_to_apply": "none"}, "function_to_apply"),
    ],
    ids=[
        "dict-extra-key",
        "list-with-none",
        "number",
        "pair-as-list",
        "top_k=-1",
        "top_k=1.5",
        "top_k=str",
        "top_k=bool",
        "batch_size=str",
        "batch_size=0",
        "lone-surrogate",
        "lone-surrogate-in-pair",
        "function",
    ],
)
def test_row_a_configured_model_refuses_what_stock_answers_or_crashes_on(inputs, kwargs, match):
    _, ours = tiny.stock_and_hubheads(_thresholded())
    with pytest.raises(PipelineInputError, match=match):
        ours(inputs, **kwargs)


@pytest.mark.parametrize("name, value", [("top_k", -1), ("top_k", "2"), ("batch_size", "4"), ("batch_size", 1.5)])
def test_row_a_configured_model_checks_top_k_and_batch_size_when_the_pipeline_is_built(name, value):
    tokenizer = tiny.build_tokenizer()
    with pytest.raises(PipelineInputError, match=f"`{name}` must be a positive integer"):
        HubheadsTextClassificationPipeline(model=_thresholded(), tokenizer=tokenizer, **{name: value})
    plain = HubheadsTextClassificationPipeline(model=tiny.build_model(), tokenizer=tokenizer, **{name: value})
    stock = TextClassificationPipeline(model=tiny.build_model(), tokenizer=tokenizer, **{name: value})
    assert parity.differs(parity.outcome(lambda: stock(TEXTS)), parity.outcome(lambda: plain(TEXTS))) is None


def test_stock_answers_what_a_configured_model_refuses():
    """The stock column of the rows above, as the installed release gives it."""
    stock, _ = tiny.stock_and_hubheads(_thresholded())
    labels = len(stock(TEXTS[0], top_k=None))
    assert len(stock(TEXTS[0], top_k=-1)) == labels - 1  # the last label silently dropped
    assert stock(TEXTS[0], top_k=1.5) == stock(TEXTS[0], top_k="2") == stock(TEXTS[0])[0]  # ignored
    with pytest.raises((TypeError, ValueError)):
        stock(TEXTS, batch_size="4")  # "batch_size should be a positive integer value, but got batch_size=4"
    assert parity.outcome(lambda: stock("abc\ud800def"))[0] == "error"  # from inside the tokenizer


def test_row_a_configured_model_streams_iterators_and_reads_tuples_as_lists():
    stock, ours = tiny.stock_and_hubheads(_thresholded())
    expected = ours(TEXTS[:3])
    assert list(ours(iter(TEXTS[:3]))) == expected == ours(tuple(TEXTS[:3]))
    with pytest.raises(ValueError):
        stock(iter(TEXTS[:3]))
    assert ours([]) == []
    if STOCK_5:
        with pytest.raises(IndexError):
            stock([])
    else:
        assert stock([]) == []
    assert ours([[[TEXTS[0], TEXTS[1]]]]) == ours([{"text": TEXTS[0], "text_pair": TEXTS[1]}])  # the old pair form


def test_row_a_call_with_hubheads_arguments_gets_hubheads_input_handling():
    stock, ours = tiny.stock_and_hubheads(tiny.build_model())  # configures nothing
    assert ours(TEXTS[:3], lang="it") == stock(TEXTS[:3])  # same answers...
    assert list(ours(iter(TEXTS[:3]), lang="it")) == stock(TEXTS[:3])  # ...and hubheads' streaming
    with pytest.raises(PipelineInputError, match="'text' key"):
        ours({"text": TEXTS[0], "label": 1}, lang="it")
    row = {"text": TEXTS[0], "label": 1}
    assert parity.differs(parity.outcome(lambda: stock(row)), parity.outcome(lambda: ours(row))) is None  # stock's
    assert parity.outcome(lambda: stock(row))[0] == ("ok" if STOCK_5 else "error")  # 4.x: a TypeError


def test_row_a_configured_model_also_stops_at_the_tokenizers_limit():
    model = _thresholded()
    stock, ours = tiny.stock_and_hubheads(model, tiny.build_tokenizer(model_max_length=16))
    text = parity.LONGER_THAN_TOKENIZER  # 22 tokens: within the model's 64 positions
    truncated = " ".join(text.split()[:14])
    assert ours(text) == ours(truncated)
    assert ours(text, top_k=None) != ours(text, top_k=None, max_length=32)  # the whole text scores differently
    assert stock(text) != stock(truncated)  # stock reads all 22 tokens
    _, plain = tiny.stock_and_hubheads(tiny.build_model(), tiny.build_tokenizer(model_max_length=16))
    assert plain(text) == stock(text)  # and so does a model that configures nothing

"""The pipeline in-process, as pip users run it: `pipeline(..., pipeline_class=HubheadsTextClassificationPipeline)`.

The consumer tests (test_consumer.py) run the same class from the repo's copy through the offline Hub cache.
"""

import logging

import pytest
import tiny
from transformers import TextClassificationPipeline, pipeline

from hubheads import HubheadsTextClassificationPipeline, PipelineInputError

TEXTS = tiny.sample_texts(9, seed=1)
LANGS = ["it", "en", "es", "it", "en", "es", "it", "fr", "en"]


CALL_SHAPES = [
    pytest.param(TEXTS[0], {}, id="string"),
    pytest.param(TEXTS, {}, id="list"),
    pytest.param(TEXTS[0], {"top_k": None}, id="string-top_k-None"),
    pytest.param(TEXTS, {"top_k": None}, id="list-top_k-None"),
    pytest.param(TEXTS, {"top_k": 2}, id="list-top_k-2"),
    pytest.param(TEXTS[0], {"top_k": 1}, id="string-top_k-1"),
    pytest.param({"text": TEXTS[0], "text_pair": TEXTS[1]}, {}, id="text-pair"),
    pytest.param([{"text": TEXTS[0], "text_pair": TEXTS[1]}, {"text": TEXTS[2]}], {}, id="text-pair-list"),
    pytest.param(TEXTS, {"batch_size": 4}, id="batched"),
    pytest.param(TEXTS, {"function_to_apply": "sigmoid", "top_k": None}, id="sigmoid"),
]


@pytest.mark.parametrize("kind", ["distilbert", "bert", "xlm-roberta"])
@pytest.mark.parametrize("num_labels", [2, 3])
@pytest.mark.parametrize("inputs, kwargs", CALL_SHAPES)
def test_unconfigured_model_gives_exactly_the_stock_output(kind, num_labels, inputs, kwargs):
    stock, ours = tiny.stock_and_hubheads(tiny.build_model(kind, num_labels))
    assert ours(inputs, **kwargs) == stock(inputs, **kwargs)


def test_an_extra_positional_argument_is_a_type_error_as_in_the_stock_pipeline():
    stock, ours = tiny.stock_and_hubheads(tiny.build_model())
    for clf in (stock, ours):
        with pytest.raises(TypeError, match="positional argument"):
            clf(TEXTS, "it")  # e.g. a language passed without `lang=`; the base Pipeline would ignore it


@pytest.mark.parametrize(
    "call",
    [
        lambda clf: clf(TEXTS, lang=["it"]),  # a list not aligned with the inputs
        lambda clf: clf(TEXTS[0], lang=["it", "en"]),  # a list for a single input
        lambda clf: clf(TEXTS, lang=7),
        lambda clf: clf(TEXTS, threshold_mode="strict"),
        lambda clf: clf([{"text": 3}]),
        lambda clf: clf(TEXTS, function_to_apply="none"),
        lambda clf: clf([[TEXTS[0], TEXTS[1]]]),
    ],
    ids=["misaligned", "list-for-one", "lang-type", "mode", "dict-text-type", "function", "legacy-pair"],
)
def test_bad_input_raises_one_error_class_that_is_both_type_and_value_error(call):
    _, clf = tiny.stock_and_hubheads(_thresholded_model())
    with pytest.raises(PipelineInputError) as raised:
        call(clf)
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, ValueError)


def test_threshold_free_multi_class_model_with_stock_pipeline_call():
    """`pipeline(...)` itself builds our class from `pipeline_class` without any remote code."""
    model, tokenizer = tiny.build_model(num_labels=3), tiny.build_tokenizer()
    ours = pipeline(
        "text-classification", model=model, tokenizer=tokenizer, pipeline_class=HubheadsTextClassificationPipeline
    )
    assert isinstance(ours, HubheadsTextClassificationPipeline)
    assert ours(TEXTS) == TextClassificationPipeline(model=model, tokenizer=tokenizer)(TEXTS)


def _thresholded_model():
    model = tiny.build_model()
    model.config.default_threshold = 0.5
    model.config.best_threshold_global = 0.6
    model.config.thresholds_by_lang = {"it": 0.35, "es": 0.45}
    return model


def _expected(model, texts, langs, mode="auto"):
    """The decision rule computed by hand from reference probabilities."""
    expected = []
    for (p0, p1), lang in zip(tiny.probabilities(model, tiny.build_tokenizer(), texts), langs):
        if mode == "default":
            cutoff = model.config.default_threshold
        elif mode == "auto" and lang in model.config.thresholds_by_lang:
            cutoff = model.config.thresholds_by_lang[lang]
        else:
            cutoff = model.config.best_threshold_global
        expected.append(("LABEL_1", p1) if p1 >= cutoff else ("LABEL_0", p0))
    return expected


def _decisions(results):
    return [(r["label"], r["score"]) for r in results]


def _assert_decisions(results, expected):
    assert [label for label, _ in _decisions(results)] == [label for label, _ in expected]
    for (_, got), (_, want) in zip(_decisions(results), expected):
        assert got == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_per_language_thresholds_decide(batch_size):
    model = _thresholded_model()
    _, clf = tiny.stock_and_hubheads(model)
    results = clf(TEXTS, lang=LANGS, batch_size=batch_size)
    expected = _expected(model, TEXTS, LANGS)
    _assert_decisions(results, expected)
    assert [r["lang"] for r in results] == LANGS
    assert [r["threshold"] for r in results] == [{"it": 0.35, "es": 0.45}.get(lang, 0.6) for lang in LANGS]
    # The thresholds matter on this data: some decisions differ from the argmax the stock pipeline returns.
    argmax = [max(p) == p[1] for p in tiny.probabilities(model, tiny.build_tokenizer(), TEXTS)]
    assert [label == "LABEL_1" for label, _ in expected] != argmax


def test_lang_from_dict_inputs_and_scalar_kwarg_match_the_aligned_list():
    model = _thresholded_model()
    _, clf = tiny.stock_and_hubheads(model)
    aligned = clf(TEXTS, lang=LANGS)
    assert clf([{"text": t, "lang": lang} for t, lang in zip(TEXTS, LANGS)]) == aligned
    assert clf(TEXTS[:3], lang="it") == clf(TEXTS[:3], lang=["it"] * 3)
    assert clf(TEXTS[0], lang="it") == [aligned[0]]
    assert list(clf((t for t in TEXTS), lang="it")) == clf(TEXTS, lang="it")


def test_threshold_modes_and_override():
    model = _thresholded_model()
    _, clf = tiny.stock_and_hubheads(model)
    _assert_decisions(clf(TEXTS, lang=LANGS, threshold_mode="default"), _expected(model, TEXTS, LANGS, "default"))
    _assert_decisions(clf(TEXTS, lang=LANGS, threshold_mode="global"), _expected(model, TEXTS, LANGS, "global"))
    by_lang = clf(TEXTS, lang=LANGS, threshold_mode="by_lang")
    assert by_lang == clf(TEXTS, lang=LANGS)
    probs = tiny.probabilities(model, tiny.build_tokenizer(), TEXTS)
    for cutoff in (0.0, 0.42, 1.0):
        labels = [r["label"] for r in clf(TEXTS, lang=LANGS, threshold=cutoff)]
        assert labels == ["LABEL_1" if p1 >= cutoff else "LABEL_0" for _, p1 in probs]


def test_construction_time_lang_and_mode_are_defaults():
    model = _thresholded_model()
    clf = pipeline(
        "text-classification",
        model=model,
        tokenizer=tiny.build_tokenizer(),
        pipeline_class=HubheadsTextClassificationPipeline,
        lang="it",
    )
    assert clf(TEXTS) == clf(TEXTS, lang="it")
    assert clf(TEXTS, lang="es") == clf(TEXTS, lang=["es"] * len(TEXTS))


def test_top_k_with_thresholds_puts_the_decision_first():
    model = _thresholded_model()
    _, clf = tiny.stock_and_hubheads(model)
    decided = clf(TEXTS, lang=LANGS)
    ranked = clf(TEXTS, lang=LANGS, top_k=None)
    assert [r[0]["label"] for r in ranked] == [r["label"] for r in decided]
    assert all(len(r) == 2 and r[0]["score"] + r[1]["score"] == pytest.approx(1) for r in ranked)
    assert clf(TEXTS, lang=LANGS, top_k=1) == [r[:1] for r in ranked]
    assert clf(TEXTS[0], lang="it", top_k=2) == ranked[0]


def _multi_label_model(**thresholds):
    model = tiny.build_model(
        num_labels=len(tiny.MULTI_LABELS),
        problem_type="multi_label_classification",
        id2label=dict(enumerate(tiny.MULTI_LABELS)),
        label2id={label: i for i, label in enumerate(tiny.MULTI_LABELS)},
    )
    for key, value in thresholds.items():
        setattr(model.config, key, value)
    return model


@pytest.mark.parametrize("batch_size", [1, 3])
def test_multi_label_sets(batch_size):
    label_thresholds = {"sarcasm": 0.2, "vulgarity": 0.9}
    model = _multi_label_model(default_threshold=0.6, label_thresholds=label_thresholds)
    _, clf = tiny.stock_and_hubheads(model)
    results = clf(TEXTS, batch_size=batch_size)
    probs = tiny.probabilities(model, tiny.build_tokenizer(), TEXTS, multi_label=True)
    for result, row in zip(results, probs):
        expected = [(label, p) for label, p in zip(tiny.MULTI_LABELS, row) if p >= label_thresholds.get(label, 0.6)]
        expected.sort(key=lambda item: -item[1])
        assert [r["label"] for r in result] == [label for label, _ in expected]
        assert [r["score"] for r in result] == pytest.approx([p for _, p in expected], abs=1e-5)
    assert any(len(r) >= 2 for r in results) and any(len(r) < len(tiny.MULTI_LABELS) for r in results)
    assert clf(TEXTS[0]) == results[0]  # one string: that input's list, not wrapped


def test_multi_label_without_thresholds_uses_half_and_top_k_caps_the_set():
    model = _multi_label_model()
    _, clf = tiny.stock_and_hubheads(model)
    probs = tiny.probabilities(model, tiny.build_tokenizer(), TEXTS, multi_label=True)
    results = clf(TEXTS)
    assert [len(r) for r in results] == [sum(p >= 0.5 for p in row) for row in probs]
    assert clf(TEXTS, top_k=1) == [r[:1] for r in results]
    assert clf(TEXTS, top_k=None) == results
    everything = clf(TEXTS, threshold=0.0)
    assert all(len(r) == len(tiny.MULTI_LABELS) for r in everything)
    assert clf(TEXTS, threshold=1.0) == [[] for _ in TEXTS]


def test_an_unknown_language_falls_back_to_global_and_warns_once(caplog):
    _, clf = tiny.stock_and_hubheads(_thresholded_model())
    with caplog.at_level(logging.WARNING):
        results = clf(TEXTS[:4], lang=["fr", "fr", "de", "fr"])
    assert [r["threshold"] for r in results] == [0.6] * 4
    warnings = [record.getMessage() for record in caplog.records if "No threshold for language" in record.getMessage()]
    assert len(warnings) == 2 and "'fr'" in warnings[0] and "'de'" in warnings[1]


@pytest.mark.parametrize(
    "inputs, kwargs, error, match",
    [
        (TEXTS[:3], {"lang": ["it", "en"]}, ValueError, "`lang` has 2 entries but 3 inputs"),
        (TEXTS[0], {"lang": ["it"]}, ValueError, "single input"),
        ({"txt": "hello"}, {"lang": "it"}, ValueError, "'text' key"),
        ({"text": "hello", "language": "it"}, {"threshold": 0.5}, ValueError, "'text' key"),
        (None, {"lang": "it"}, TypeError, "Inputs must be"),
        (42, {"threshold_mode": "default"}, TypeError, "Inputs must be"),
        (TEXTS[0], {"lang": 3}, TypeError, "`lang` must be"),
        (TEXTS[0], {"threshold": 1.5}, ValueError, "`threshold`"),
        (TEXTS[0], {"threshold": "high"}, ValueError, "`threshold`"),
        (TEXTS[0], {"threshold_mode": "tuned"}, ValueError, "threshold_mode"),
        (TEXTS[0], {"threshold_mode": "global"}, ValueError, "best_threshold_global"),
        (TEXTS[0], {"bio": "I write about food"}, ValueError, "reads no author bio"),
    ],
)
def test_bad_calls_name_the_problem(inputs, kwargs, error, match):
    """A call with a hubheads argument gets hubheads' checks, also on a model that configures nothing (without
    one, that model's calls are the stock pipeline's: tests/test_stock_parity.py)."""
    _, clf = tiny.stock_and_hubheads(tiny.build_model())
    with pytest.raises(error, match=match):
        clf(inputs, **kwargs)


def test_a_threshold_on_a_multi_class_model_is_refused():
    _, clf = tiny.stock_and_hubheads(tiny.build_model(num_labels=3))
    with pytest.raises(ValueError, match="num_labels=3"):
        clf(TEXTS[0], threshold=0.5)


@pytest.mark.parametrize(
    "config, match",
    [
        ({"best_threshold_global": 1.7}, "best_threshold_global"),
        ({"thresholds_by_lang": ["it", 0.7]}, "thresholds_by_lang"),
        ({"label_thresholds": {"LABEL_0": 0.3}}, "multi-label"),
    ],
)
def test_broken_configs_are_refused_when_the_pipeline_loads(config, match):
    model = tiny.build_model()
    for key, value in config.items():
        setattr(model.config, key, value)
    with pytest.raises(ValueError, match=match):
        HubheadsTextClassificationPipeline(model=model, tokenizer=tiny.build_tokenizer())


def test_function_to_apply_cannot_bend_thresholded_decisions():
    _, clf = tiny.stock_and_hubheads(_thresholded_model())
    with pytest.raises(ValueError, match="function_to_apply='none'"):
        clf(TEXTS, function_to_apply="none")
    assert clf(TEXTS, function_to_apply="softmax") == clf(TEXTS)  # the probabilities the thresholds compare with
    _, multi = tiny.stock_and_hubheads(_multi_label_model())
    with pytest.raises(ValueError, match="sigmoid"):
        multi(TEXTS, function_to_apply="softmax")


def test_datasets_and_iterators_stream_like_in_the_stock_pipeline():
    from transformers.pipelines.pt_utils import KeyDataset

    rows = [{"text": t} for t in TEXTS]
    stock, ours = tiny.stock_and_hubheads(tiny.build_model())
    assert list(ours(KeyDataset(rows, "text"), batch_size=2)) == list(stock(KeyDataset(rows, "text"), batch_size=2))
    for clf in (stock, ours):  # a model that configures nothing takes what the stock pipeline takes: generators
        assert list(clf(t for t in TEXTS)) == stock(TEXTS)
        with pytest.raises(ValueError, match="text input must be"):
            clf(iter(TEXTS))
    _, tuned = tiny.stock_and_hubheads(_thresholded_model())  # a configured model streams any iterator
    assert list(tuned(iter(TEXTS), lang="it")) == tuned(TEXTS, lang="it")


def test_an_empty_list_gives_an_empty_list():
    _, clf = tiny.stock_and_hubheads(_thresholded_model())
    assert clf([]) == []


def test_numpy_thresholds_are_numbers_too():
    import numpy as np

    _, clf = tiny.stock_and_hubheads(_thresholded_model())
    assert clf(TEXTS, threshold=np.float32(0.42)) == clf(TEXTS, threshold=float(np.float32(0.42)))

"""A configured model's list is tokenized in batched tokenizer calls: the same results as each input on its own.

`__call__` encodes a list's texts in one tokenizer call and its distinct bios in one more, and each input's
`preprocess` reads its part instead of calling the tokenizer again. Only a call whose per-input tokenization is
provably the same takes that path (no tokenizer arguments, a text pair on every input or on none); streams, other lists
and a model that configures nothing tokenize one input at a time, as before.
"""

from __future__ import annotations

import pytest
import tiny
import torch

from hubheads import HubheadsTextClassificationPipeline, add_language_tokens

SHORT = tiny.sample_texts(30, seed=31)
LONG = tiny.sample_texts(10, seed=32, min_words=80, max_words=120)  # past every tiny model's positions
MESSY = ["  ciao   @marco https://x.co/a  amico ", "ｈｅｌｌｏ\tworld  @bob"]  # what `text_normalize` rewrites
TEXTS = MESSY + [text for pair in zip(SHORT, LONG + SHORT[: len(SHORT) - len(LONG)]) for text in pair][:38]
LANGS = [["it", "en", "es", "fr"][i % 4] for i in range(len(TEXTS))]
AUTHORS = ["  love   @people https://x.co/a friend ", "hate enemy awful", "grazie amico " * 30, "ciao mondo"]
BIOS = [AUTHORS[i % 4] if i % 5 else [None, "", "   "][i % 3] for i in range(len(TEXTS))]  # 4 bios, and no bio


def _binary():
    model = tiny.build_model("bert")
    model.config.best_threshold_global = 0.6
    return model


def _gated_bio():
    return tiny.build_gated_bio(use_lang_token=True, languages=["it", "en"], text_normalize=True, max_seq_length=24)


#: Model kinds: (builder, per-input call arguments as lists aligned with TEXTS).
KINDS = {
    "binary-thresholds": (_binary, {}),
    "thresholds-by-lang": (tiny.build_thresholded_by_lang, {"lang": LANGS}),
    "multi-label": (tiny.build_multi_label, {}),
    "multi-task": (tiny.build_residual_type_fusion, {"lang": LANGS}),
    "gated-bio": (_gated_bio, {"bio": BIOS, "lang": LANGS}),
}


def _pipeline(build, **pipeline_kwargs) -> HubheadsTextClassificationPipeline:
    model, tokenizer = build(), tiny.build_tokenizer()
    if getattr(model.config, "use_lang_token", False):
        add_language_tokens(model, tokenizer)
    return HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer, **pipeline_kwargs)


def _items(clf, per_input: dict) -> list:
    """TEXTS as `__call__` checks them, with their per-input arguments."""
    columns = [per_input.get(key, [None] * len(TEXTS)) for key in ("lang", "bio")]
    return [clf._as_item(text, lang, bio) for text, lang, bio in zip(TEXTS, *columns)]


def _one_by_one(clf, inputs: list, per_input: dict, **kwargs) -> list:
    """Each input classified alone, as a dict input: the per-input tokenization of `preprocess`."""
    results = []
    for index, item in enumerate(inputs):
        item = dict(item) if isinstance(item, dict) else {"text": item}
        for key, values in per_input.items():
            item.setdefault(key, values[index])
        results.append(clf(item, **kwargs))
    return results


def _assert_same(batched, expected, path: str = "result") -> None:
    """The same labels and structure, scores within 1e-6."""
    if isinstance(expected, list):
        assert isinstance(batched, list) and len(batched) == len(expected), path
        for index, (got, want) in enumerate(zip(batched, expected)):
            _assert_same(got, want, f"{path}[{index}]")
    elif isinstance(expected, dict):
        assert isinstance(batched, dict) and batched.keys() == expected.keys(), path
        for key in expected:
            _assert_same(batched[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, float):
        assert batched == pytest.approx(expected, abs=1e-6), path
    else:
        assert batched == expected, path


@pytest.fixture
def tokenizer_calls(monkeypatch):
    """Counts the calls of every tokenizer's `__call__` from here on."""
    calls: list = []
    tokenizer_class = type(tiny.build_tokenizer())
    original = tokenizer_class.__call__

    def counting(self, *args, **kwargs):
        calls.append(args[0] if args else kwargs.get("text"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tokenizer_class, "__call__", counting)
    return calls


@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("kind", KINDS)
def test_a_list_gives_the_results_of_each_input_alone(kind, batch_size):
    build, per_input = KINDS[kind]
    clf = _pipeline(build)
    _assert_same(clf(TEXTS, batch_size=batch_size, **per_input), _one_by_one(clf, TEXTS, per_input))


@pytest.mark.parametrize("kind", KINDS)
def test_each_input_gets_exactly_the_model_inputs_of_its_own_tokenization(kind):
    build, per_input = KINDS[kind]
    clf = _pipeline(build, bio_cache_size=0)  # with the bio cache, a list's bios come pooled (test_bio_cache.py)
    items = _items(clf, per_input)
    lengths = clf._encode_together(items, {})
    assert lengths is not None
    for item, length in zip(items, lengths):
        batched = clf.preprocess(item)
        item.encoding = None
        alone = clf.preprocess(item)
        assert batched.keys() == alone.keys()
        assert batched["input_ids"].shape == (1, length)
        for key, value in alone.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == batched[key].dtype and torch.equal(value, batched[key]), key
            else:
                assert value == batched[key], key


@pytest.mark.parametrize("kind", KINDS)
def test_a_list_takes_one_tokenizer_call_and_one_more_for_its_bios(kind, tokenizer_calls):
    build, per_input = KINDS[kind]
    clf = _pipeline(build)
    clf(TEXTS, batch_size=8, **per_input)
    assert len(tokenizer_calls) == (2 if kind == "gated-bio" else 1)
    if kind == "gated-bio":
        assert len(tokenizer_calls[1]) == 4  # each distinct bio once


def test_text_pairs_on_every_input_are_tokenized_together(tokenizer_calls):
    clf = _pipeline(_binary)
    pairs = [{"text": text, "text_pair": other} for text, other in zip(TEXTS, reversed(TEXTS))]
    batched = clf(pairs, batch_size=8)
    assert len(tokenizer_calls) == 1
    _assert_same(batched, _one_by_one(clf, pairs, {}))


@pytest.mark.parametrize(
    "pair_of",
    [
        lambda index: TEXTS[-index] if index % 2 else None,  # pairs on some inputs only
        lambda index: "" if index % 2 else TEXTS[-index],  # an empty pair is no pair for one input alone
    ],
    ids=["some-pairs", "empty-pairs"],
)
def test_mixed_text_pairs_are_tokenized_one_by_one(pair_of, tokenizer_calls):
    clf = _pipeline(_binary)
    inputs = [{"text": text, "text_pair": pair_of(index)} for index, text in enumerate(TEXTS)]
    batched = clf(inputs, batch_size=8)
    assert len(tokenizer_calls) == len(inputs)  # per input; lengths from the texts' characters, as before
    _assert_same(batched, _one_by_one(clf, inputs, {}))


@pytest.mark.parametrize(
    "call_kwargs, pipeline_kwargs",
    [
        ({"truncation": True, "max_length": 10}, {}),
        ({"padding": "max_length", "max_length": 20, "truncation": True}, {}),
        ({}, {"max_length": 12, "truncation": True}),  # set on the pipeline: the same for every call
    ],
    ids=["call-truncation", "call-padding", "pipeline-max_length"],
)
def test_tokenizer_arguments_keep_the_per_input_tokenization(call_kwargs, pipeline_kwargs, tokenizer_calls):
    build, per_input = KINDS["gated-bio"]
    clf = _pipeline(build, **pipeline_kwargs)
    batched = clf(TEXTS, batch_size=8, **per_input, **call_kwargs)
    with_bio = sum(1 for bio in BIOS if (bio or "").strip())
    assert len(tokenizer_calls) == 1 + len(TEXTS) + with_bio  # the lengths, then each text and each bio
    _assert_same(batched, _one_by_one(clf, TEXTS, per_input, **call_kwargs))


def test_a_language_set_on_the_pipeline_prepares_every_text():
    clf = _pipeline(_gated_bio, lang="it")
    bios = {"bio": BIOS}
    _assert_same(clf(TEXTS, batch_size=8, **bios), _one_by_one(clf, TEXTS, bios))
    assert clf(TEXTS, batch_size=8, **bios) != clf(TEXTS, batch_size=8, lang="es", **bios)


def test_a_stream_is_tokenized_one_input_at_a_time(tokenizer_calls):
    clf = _pipeline(_binary)
    streamed = list(clf((text for text in TEXTS), batch_size=8))
    assert len(tokenizer_calls) == len(TEXTS)
    _assert_same(streamed, _one_by_one(clf, TEXTS, {}))


def test_a_model_that_configures_nothing_keeps_the_per_input_tokenization(tokenizer_calls):
    stock, ours = tiny.stock_and_hubheads(tiny.build_model("bert"))
    for kwargs in ({}, {"batch_size": 8}):
        expected = stock(SHORT, **kwargs)
        del tokenizer_calls[:]
        assert ours(SHORT, **kwargs) == expected
        assert len(tokenizer_calls) == len(SHORT)
    del tokenizer_calls[:]
    ours(SHORT, lang="it", batch_size=8)  # an argument of this class: its own path, still one input at a time
    assert len(tokenizer_calls) == len(SHORT)

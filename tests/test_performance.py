"""The pipeline's optimisations change no decision: length-sorted batches, one encoding per distinct bio,
inference mode. Their speed is measured in benchmarks/, not asserted here."""

import pytest
import tiny
import torch

from hubheads import HubheadsTextClassificationPipeline

TEXTS = tiny.sample_texts(23, seed=5, min_words=1, max_words=30)


def _thresholded():
    model = tiny.build_model("bert")
    model.config.best_threshold_global = 0.5
    return model


def _same(got, want):
    assert [r["label"] for r in got] == [r["label"] for r in want]
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=1e-5)


def test_length_sorted_batches_return_the_unsorted_results_in_input_order():
    clf = HubheadsTextClassificationPipeline(model=_thresholded(), tokenizer=tiny.build_tokenizer())
    seen = []
    preprocess = clf.preprocess

    def spy(inputs, **kwargs):
        seen.append(inputs["text"])
        return preprocess(inputs, **kwargs)

    clf.preprocess = spy
    sorted_run = clf(TEXTS, batch_size=4)
    tokens = tiny.build_tokenizer()
    by_tokens = sorted(TEXTS, key=lambda text: len(tokens(text, add_special_tokens=False)["input_ids"]))
    assert seen == by_tokens, "a batched call must run the inputs fewest tokens first"
    seen.clear()
    one_by_one = clf(TEXTS)  # batch_size 1: the input order, no sorting
    assert seen == TEXTS
    _same(sorted_run, one_by_one)


def test_an_unconfigured_model_keeps_the_stock_order():
    clf = HubheadsTextClassificationPipeline(model=tiny.build_model("bert"), tokenizer=tiny.build_tokenizer())
    seen = []
    preprocess = clf.preprocess
    clf.preprocess = lambda inputs, **kwargs: seen.append(inputs) or preprocess(inputs, **kwargs)
    clf(TEXTS, batch_size=4)
    assert seen == TEXTS  # the inputs as given, in their order: the stock pipeline's own path


def test_each_distinct_bio_of_a_batch_is_encoded_once_with_the_same_results():
    """With the bio cache off, the model itself encodes each distinct bio of a batch once (test_bio_cache.py: on)."""
    model = tiny.build_gated_bio()
    clf = HubheadsTextClassificationPipeline(model=model, tokenizer=tiny.build_tokenizer(), bio_cache_size=0)
    bios = ["love people friend"] * 10 + ["hate enemy awful"] * 10 + [None] * 3
    rows_encoded = tiny.count_encoded_rows(model)
    deduplicated = clf(TEXTS, bio=bios, batch_size=len(TEXTS))
    assert rows_encoded == [len(TEXTS), 2], "one pass over the posts, one over the two distinct bios"
    rows_encoded.clear()
    each_alone = clf(TEXTS, bio=bios)  # batch_size 1: every bio encoded with its own post
    assert rows_encoded == [1, 1] * 20 + [1] * 3
    _same(deduplicated, each_alone)


def test_the_forward_pass_runs_in_inference_mode():
    model = _thresholded()
    modes = []
    model.register_forward_hook(lambda *_: modes.append(torch.is_inference_mode_enabled()))
    HubheadsTextClassificationPipeline(model=model, tokenizer=tiny.build_tokenizer())(TEXTS[:3])
    assert modes == [True, True, True]


@pytest.mark.parametrize(
    "build", [tiny.build_residual_type_fusion, tiny.build_gated_bio], ids=["multi-task", "gated-bio"]
)
def test_scores_do_not_depend_on_the_padding_side(build):
    """With left padding, position 0 is padding: pooling reads the first real token, bios pad with the pad id."""
    model = build("xlm-roberta")
    tokenizer = tiny.build_tokenizer()
    tokenizer.padding_side = "left"
    clf = HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer)
    kwargs = (
        {"bio": ["love people friend", None, "hate", "", "thanks a lot friend", None] * 4}
        if build is tiny.build_gated_bio
        else {}
    )
    texts = TEXTS[:24] + TEXTS[:0]
    texts = (texts * 2)[:24]
    _same(clf(texts, batch_size=6, **kwargs), clf(texts, **kwargs))


def test_batches_keep_one_authors_posts_together():
    """With the bio cache off, the bios go into each batch as ids: one author's posts batch together."""
    model = tiny.build_gated_bio()
    clf = HubheadsTextClassificationPipeline(model=model, tokenizer=tiny.build_tokenizer(), bio_cache_size=0)
    bios = ["love people friend", "hate enemy awful"] * 10 + [None] * 3  # interleaved authors
    rows_encoded = tiny.count_encoded_rows(model)
    batched = clf(TEXTS, bio=bios, batch_size=8)
    # Sorted by bio: [3 without, 5 "hate"], [5 "hate", 3 "love"], [7 "love"] -> 1, 2 and 1 bio encodings.
    assert rows_encoded == [8, 1, 8, 2, 7, 1]
    rows_encoded.clear()
    _same(batched, clf(TEXTS, bio=bios))

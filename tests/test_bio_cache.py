"""The gated-bio model's pooled-bio forward (`encode_bios`, `bio_embeds`) and the pipeline's bounded bio cache.

An author posts many times: the pipeline encodes each distinct bio once per call and keeps the pooled vectors between
calls in an LRU (`clf.bio_cache`), emptied whenever the model's weights could have changed. Every test compares with
the path that encodes the bios from their ids (the cache off, or each input alone).
"""

import pytest
import tiny
import torch
from transformers import pipeline

from hubheads import GatedBioCollator, HubheadsTextClassificationPipeline
from hubheads.modeling.pipeline_hubheads import BioVectorCache, PipelineInputError

TEXTS = tiny.sample_texts(24, seed=31, min_words=1, max_words=20)
AUTHORS = ["love people friend", "hate enemy awful", "grazie amico mondo", "thanks very good", "odio gente"]
#: Five authors posting in turn, and posts without a bio (missing, empty, blank).
BIOS = [AUTHORS[i % 5] if i % 4 else [None, "", "  "][i % 3] for i in range(len(TEXTS))]


def _model(**config_kwargs):
    """A tiny gated-bio model whose bios move the scores without saturating them (`tiny.build_gated_bio`'s wide bio
    projection puts every post with a bio at a score of 1.0, whatever the bio)."""
    model = tiny.build_gated_bio(**config_kwargs)
    generator = torch.Generator().manual_seed(0)  # the same weights on every torch and transformers release
    with torch.no_grad():
        if model.bio_projection is not None:
            weight = model.bio_projection.weight
            weight.copy_(torch.randn(weight.shape, generator=generator) * 0.5)
        # transformers 4.x initialises this head wider: every score would sit at 1.0, with or without a bio.
        model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=generator) * 0.02)
        model.classifier.bias.zero_()
    return model


def _pipelines(model, **on_kwargs):
    """The same model behind a pipeline with the bio cache (`on_kwargs`) and one without."""
    tokenizer = tiny.build_tokenizer()
    on = HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer, **on_kwargs)
    return on, HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer, bio_cache_size=0)


def _same(got, want, abs_tol=1e-6):
    got, want = [r[0] if isinstance(r, list) else r for r in got], [r[0] if isinstance(r, list) else r for r in want]
    assert [r["label"] for r in got] == [r["label"] for r in want]
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=abs_tol)


def _batch(model, texts, bios):
    return GatedBioCollator(tiny.build_tokenizer(), model.config)([{"text": t, "bio": b} for t, b in zip(texts, bios)])


@pytest.mark.parametrize("gated", [True, False])
def test_pooled_bio_vectors_give_the_logits_of_the_bio_ids(gated):
    model = _model(gated_bio=gated)
    batch = _batch(model, TEXTS, BIOS)
    posts = {key: value for key, value in batch.items() if not key.startswith("bio_")}
    has_bio = batch["bio_attention_mask"].sum(dim=-1) > 0
    with torch.no_grad():
        expected = model(**batch).logits
        # Each distinct bio encoded alone, in another batch than the posts' bios: what a cache holds.
        alone = {bio: model.encode_bios(**_tokenized_bio(model, bio))[0] for bio in AUTHORS}
        vectors = torch.stack([alone[bio] if bio in alone else torch.full((32,), float("nan")) for bio in BIOS])
        from_vectors = model(**posts, bio_embeds=vectors, has_bio=has_bio).logits
        with_bio = {key: value[has_bio] for key, value in posts.items()}
        every_row_has_one = model(**with_bio, bio_embeds=vectors[has_bio]).logits  # `has_bio` left out
        no_bio = model(**posts).logits[~has_bio]
    assert torch.allclose(from_vectors, expected, atol=1e-6, rtol=0), "a row without a bio ignores its vector (NaN)"
    assert torch.equal(from_vectors[~has_bio], no_bio), "the no-bio path, exactly"
    assert torch.allclose(every_row_has_one, expected[has_bio], atol=1e-6, rtol=0)


def _tokenized_bio(model, bio):
    encoded = tiny.build_tokenizer()(bio, return_tensors="pt", return_token_type_ids=False)
    return {"bio_input_ids": encoded["input_ids"], "bio_attention_mask": encoded["attention_mask"]}


def test_the_pooled_bio_forward_refuses_mixed_or_misshapen_bios():
    model = _model()
    batch = _batch(model, TEXTS[:3], AUTHORS[:3])
    posts = {key: value for key, value in batch.items() if not key.startswith("bio_")}
    vectors = model.encode_bios(batch["bio_input_ids"], batch["bio_attention_mask"])
    with pytest.raises(ValueError, match="not both"):
        model(**batch, bio_embeds=vectors)
    with pytest.raises(ValueError, match="goes with `bio_embeds`"):
        model(**batch, has_bio=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(batch, hidden\)"):
        model(**posts, bio_embeds=vectors[:2])
    with pytest.raises(ValueError, match="has_bio"):
        model(**posts, bio_embeds=vectors, has_bio=torch.ones(2, dtype=torch.bool))


def test_training_still_draws_dropout_for_every_bio_row():
    model = _model(classifier_dropout=0.5).train()
    bios = [AUTHORS[0]] * 4
    torch.manual_seed(0)
    vectors = model.encode_bios(**{k: v for k, v in _batch(model, TEXTS[:4], bios).items() if k.startswith("bio_")})
    assert not torch.equal(vectors[0], vectors[1]), "one author's bio, two dropout draws"
    clf = HubheadsTextClassificationPipeline(model=model, tokenizer=tiny.build_tokenizer())
    clf(TEXTS[:4], bio=bios)
    assert len(clf.bio_cache) == 0, "nothing is cached from a model in training mode"


@pytest.mark.parametrize("batch_size", [1, 8])
def test_cached_scores_equal_the_cache_off_and_each_input_alone(batch_size):
    model = _model()
    on, off = _pipelines(model)
    rows_encoded = tiny.count_encoded_rows(model)
    cached = on(TEXTS, bio=BIOS, batch_size=batch_size)
    assert sum(rows_encoded) == len(TEXTS) + len(AUTHORS), "the posts, and each distinct bio once"
    assert len(on.bio_cache) == len(AUTHORS)
    without = off(TEXTS, batch_size=batch_size)
    moved = [abs(a["score"] - b["score"]) > 1e-3 for a, b in zip(cached, without)]
    assert moved == [bool((bio or "").strip()) for bio in BIOS], "every bio, and only a bio, moves its post's score"
    _same(cached, off(TEXTS, bio=BIOS, batch_size=batch_size))
    _same(cached, [off(text, bio=bio) for text, bio in zip(TEXTS, BIOS)])
    rows_encoded.clear()
    _same(on(TEXTS[::-1], bio=BIOS[::-1], batch_size=batch_size), cached[::-1])
    assert sum(rows_encoded) == len(TEXTS), "a second call on the same authors encodes no bio"


def test_single_inputs_and_streams_share_the_cache():
    model = _model()
    on, off = _pipelines(model)
    rows_encoded = tiny.count_encoded_rows(model)
    singles = [on(text, bio=bio) for text, bio in zip(TEXTS, BIOS)]
    assert sum(rows_encoded) == len(TEXTS) + len(AUTHORS)
    rows_encoded.clear()
    stream = list(on(({"text": t, "bio": b} for t, b in zip(TEXTS, BIOS)), batch_size=8))
    assert sum(rows_encoded) == len(TEXTS), "every bio of the stream was cached by the single calls"
    expected = off(TEXTS, bio=BIOS, batch_size=8)
    _same(singles, expected)
    _same(stream, expected)
    rows_encoded.clear()
    truncated = on(TEXTS, bio=BIOS, batch_size=8, max_length=6)  # tokenized one by one: the bios' ids key the cache
    _same(truncated, off(TEXTS, bio=BIOS, batch_size=8, max_length=6))


def test_a_tiny_cache_gives_the_same_scores_and_never_grows_past_its_size():
    model = _model()
    on, off = _pipelines(model, bio_cache_size=2)
    sizes = []
    store = on.bio_cache.store
    on.bio_cache.store = lambda *args: (store(*args), sizes.append(len(on.bio_cache)))
    for call in range(3):
        texts, bios = TEXTS[call::2], BIOS[call::2]
        _same(on(texts, bio=bios, batch_size=4), off(texts, bio=bios, batch_size=4))
        _same([on(text, bio=bio) for text, bio in zip(texts[:5], bios[:5])], off(texts[:5], bio=bios[:5]))
    assert sizes and max(sizes) == 2
    on.bio_cache.maxsize = 1
    assert len(on.bio_cache) == 1
    with pytest.raises(PipelineInputError, match="bio_cache_size"):
        HubheadsTextClassificationPipeline(model=model, tokenizer=tiny.build_tokenizer(), bio_cache_size=-1)


def test_the_least_recently_used_vector_leaves_first():
    cache, state = BioVectorCache(2), ("state",)
    cache.lookup([(1,), (2,)], state)
    cache.store([((1,), torch.ones(2)), ((2,), torch.zeros(2))], state)
    assert cache.lookup([(1,)], state)[0] is not None  # (1,) is now the most recently used
    cache.store([((3,), torch.ones(2))], state)
    assert [vector is not None for vector in cache.lookup([(1,), (2,), (3,)], state)] == [True, False, True]
    cache.store([((4,), torch.ones(2))], ("another state",))  # computed under weights that have changed: dropped
    assert len(cache) == 2 and cache.lookup([(4,)], state) == [None]
    assert cache.lookup([(1,)], ("another state",)) == [None] and len(cache) == 0


def _train_one_step(model, eval_mode: bool):
    """One optimizer step on a batch of the test posts, in training mode or (no dropout) in eval mode."""
    model.train(not eval_mode)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = _batch(model, TEXTS[:8], BIOS[:8])
    model(**batch, labels=torch.tensor([0, 1] * 4)).loss.backward()
    optimizer.step()
    model.eval()


@pytest.mark.parametrize(
    "change",
    [
        lambda model: _train_one_step(model, eval_mode=False),
        lambda model: _train_one_step(model, eval_mode=True),  # no train()/eval() flip tells of this one
        lambda model: model.load_state_dict(_model(seed=1).state_dict()),
        lambda model: torch.nn.init.normal_(model.encoder.embeddings.word_embeddings.weight),  # an in-place write
    ],
    ids=["train-step-eval", "step-in-eval-mode", "load_state_dict", "in-place-edit"],
)
def test_no_stale_vector_after_the_weights_change(change):
    model = _model()
    on, off = _pipelines(model)
    before = on(TEXTS, bio=BIOS, batch_size=8)
    change(model)
    after = on(TEXTS, bio=BIOS, batch_size=8)
    _same(after, off(TEXTS, bio=BIOS, batch_size=8))
    _same([on(text, bio=bio) for text, bio in zip(TEXTS, BIOS)], after)
    assert [r["score"] for r in after] != pytest.approx([r["score"] for r in before], abs=1e-4)


def test_bfloat16_vectors_are_cached_at_the_models_dtype():
    model = _model()
    on, off = _pipelines(model)
    float32 = on(TEXTS, bio=BIOS)
    model.to(torch.bfloat16)
    bfloat16 = on(TEXTS, bio=BIOS)  # batch size 1 on both sides: the same computations, exactly
    assert [r["score"] for r in bfloat16] == [r["score"] for r in off(TEXTS, bio=BIOS)]
    assert [r["score"] for r in bfloat16] != [r["score"] for r in float32]
    assert {vector.dtype for vector in on.bio_cache._entries.values()} == {torch.bfloat16}
    rows_encoded = tiny.count_encoded_rows(model)
    assert on(TEXTS, bio=BIOS) == bfloat16
    assert sum(rows_encoded) == len(TEXTS), "the bfloat16 vectors were cached"


def test_the_stock_pipeline_call_takes_the_cache_size():
    kwargs = dict(model=_model(), tokenizer=tiny.build_tokenizer(), pipeline_class=HubheadsTextClassificationPipeline)
    clf = pipeline("text-classification", **kwargs)
    assert clf.bio_cache.maxsize == 4096
    off = pipeline("text-classification", bio_cache_size=0, **kwargs)
    assert off.bio_cache.maxsize == 0
    off(TEXTS, bio=BIOS, batch_size=8)
    assert len(off.bio_cache) == 0

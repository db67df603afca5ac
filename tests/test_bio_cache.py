"""The gated-bio model's pooled-bio forward (`encode_bios`, `bio_embeds`) and the pipeline's bounded bio cache.

An author posts many times: the pipeline encodes each distinct bio once per call and keeps the pooled vectors between
calls in an LRU (`clf.bio_cache`), emptied whenever the model's weights could have changed. Every test compares with
the path that encodes the bios from their ids (the cache off, or each input alone).
"""

import pytest
import tiny
import torch

from hubheads import GatedBioCollator

TEXTS = tiny.sample_texts(24, seed=31, min_words=1, max_words=20)
AUTHORS = ["love people friend", "hate enemy awful", "grazie amico mondo", "thanks very good", "odio gente"]
#: Five authors posting in turn, and posts without a bio (missing, empty, blank).
BIOS = [AUTHORS[i % 5] if i % 4 else [None, "", "  "][i % 3] for i in range(len(TEXTS))]


def _model(**config_kwargs):
    """A tiny gated-bio model whose bios move the scores without saturating them (`tiny.build_gated_bio`'s wide bio
    projection puts every post with a bio at a score of 1.0, whatever the bio)."""
    model = tiny.build_gated_bio(**config_kwargs)
    if model.bio_projection is not None:
        torch.nn.init.normal_(model.bio_projection.weight, std=0.1)
    return model


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

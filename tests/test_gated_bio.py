"""The gated-bio dual-input classifier: config, the no-bio path, losses, training helpers, loading, consumers."""

import json

import pytest
import tiny
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForSequenceClassification

from hubheads import (
    GatedBioCollator,
    GatedBioConfig,
    GatedBioForSequenceClassification,
    HubheadsTextClassificationPipeline,
    add_language_tokens,
    export_model,
    install_in_offline_cache,
    run_stock_pipeline,
)
from hubheads.modeling.configuration_gated_bio import normalize_text

TEXTS = tiny.sample_texts(6, seed=11)
BIOS = ["love people friend", None, "", "hate enemy awful", "   ", "grazie amico"]


def _batch(model, rows, tokenizer=None):
    return GatedBioCollator(tokenizer or tiny.build_tokenizer(), model.config)(rows)


def _rows(bios=BIOS, langs=None):
    return [
        {"text": t, "bio": b, "lang": (langs or [None] * len(TEXTS))[i]} for i, (t, b) in enumerate(zip(TEXTS, bios))
    ]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"use_bio": "yes"}, "use_bio"),
        ({"use_lang_token": True}, "languages"),
        ({"languages": ["it", ""]}, "languages"),
        ({"lang_token_format": "<lang>"}, "lang_token_format"),
        ({"pooling": "max"}, "pooling"),
        ({"max_seq_length": 1}, "max_seq_length"),
        ({"max_seq_length": 2.5}, "max_seq_length"),
        ({"class_weights": [1.0]}, "class_weights"),
        ({"r_kl_alpha": -1}, "r_kl_alpha"),
        ({"r_drop": True, "problem_type": "multi_label_classification"}, "r_drop"),
        ({"thresholds_by_lang": {"it": "0.7"}}, "thresholds_by_lang"),
    ],
)
def test_config_refuses_bad_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GatedBioConfig(**kwargs)


def test_config_round_trip_and_text_preparation(tmp_path):
    config = GatedBioConfig(
        backbone_config={"model_type": "bert", "hidden_size": 32, "num_attention_heads": 2},
        use_lang_token=True,
        languages=["IT", "en"],
        text_normalize=True,
        focal_loss=True,
        focal_gamma=2.5,
        r_drop=True,
        max_seq_length=128,
        thresholds_by_lang={"it": 0.7},
    )
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, GatedBioConfig) and loaded.backbone_config.hidden_size == 32
    assert (loaded.languages, loaded.focal_gamma, loaded.r_drop, loaded.max_seq_length) == (
        ["it", "en"],
        2.5,
        True,
        128,
    )
    assert loaded.language_tokens() == ["<it>", "<en>"]
    raw = "Ciao  @marco,\tguarda https://x.co/a  ｆｕｌｌ"
    assert normalize_text(raw) == "Ciao @USER, guarda URL full"
    assert loaded.prepare_text(raw, "IT") == "<it> Ciao @USER, guarda URL full"
    assert loaded.prepare_text("hola", "es") == "hola"  # no token for a language without one
    assert [loaded.prepare_bio(b) for b in (None, "", "  \n", " @ana writes ")] == [None, None, None, "@USER writes"]
    with pytest.raises(TypeError, match="bio"):
        loaded.prepare_bio(42)


@pytest.mark.parametrize("gated", [True, False])
def test_a_row_without_bio_takes_the_no_bio_path_exactly(gated):
    model = tiny.build_gated_bio(gated_bio=gated)
    mixed = model(**_batch(model, _rows())).logits
    none = model(**_batch(model, _rows(bios=[None] * 6))).logits
    empty = model(**_batch(model, _rows(bios=[""] * 6))).logits
    without = [i for i, b in enumerate(BIOS) if not (b or "").strip()]
    with_bio = [i for i in range(6) if i not in without]
    assert torch.equal(mixed[without], none[without]) and torch.equal(none, empty)
    assert not torch.isclose(mixed[with_bio], none[with_bio]).all(dim=-1).any(), "every bio must move its row"
    batch = _batch(model, _rows())
    no_bio_inputs = {k: v for k, v in batch.items() if not k.startswith("bio_")}
    assert torch.equal(model(**no_bio_inputs).logits, none)


def test_a_bio_is_cut_at_the_models_positions_whatever_max_length_the_caller_asks():
    model = tiny.build_gated_bio()  # xlm-roberta: 32 usable positions
    clf = HubheadsTextClassificationPipeline(model=model, tokenizer=tiny.build_tokenizer())
    long_bio = " ".join(["amico"] * 200)
    capped = clf(TEXTS[0], bio=long_bio, max_length=1000)  # the text is cut at the positions too
    assert capped == clf(TEXTS[0], bio=" ".join(["amico"] * 30), max_length=1000)  # 30 words + 2 specials = 32
    for inputs in ([TEXTS[0]] * 3, TEXTS[0]):  # lists (batched tokenization) and single inputs
        assert clf(inputs, bio=long_bio, max_length=40) is not None


def test_use_bio_false_ignores_bios():
    model = tiny.build_gated_bio(use_bio=False)
    assert model.gate is None and model.classifier.in_features == 32
    batch = _batch(model, _rows())
    assert "bio_input_ids" not in batch
    clf = HubheadsTextClassificationPipeline(model=model, tokenizer=tiny.build_tokenizer())
    with pytest.raises(ValueError, match="reads no author bio"):
        clf(TEXTS[0], bio="a bio")


def test_focal_and_class_weighted_losses():
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    weighted = tiny.build_gated_bio(class_weights=[1.0, 3.0])
    out = weighted(**_batch(weighted, _rows()), labels=labels)
    expected = F.cross_entropy(out.logits, labels, weight=torch.tensor([1.0, 3.0]))
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-6)
    focal = tiny.build_gated_bio(focal_loss=True, focal_gamma=2.5)
    out = focal(**_batch(focal, _rows()), labels=labels)
    p = out.logits.softmax(-1)[torch.arange(6), labels]
    assert out.loss.item() == pytest.approx((-((1 - p) ** 2.5) * p.log()).mean().item(), abs=1e-6)


def test_r_drop_loss_is_the_mean_loss_plus_the_symmetric_kl_of_two_dropout_passes():
    model = tiny.build_gated_bio(r_drop=True, r_kl_alpha=0.5, classifier_dropout=0.3)
    model.train()
    batch, labels = _batch(model, _rows()), torch.tensor([0, 1, 1, 0, 1, 0])
    torch.manual_seed(5)
    out = model(**batch, labels=labels)
    torch.manual_seed(5)
    first, second = model(**batch).logits, model(**batch).logits  # the same two dropout draws
    assert not torch.equal(first, second) and torch.equal(out.logits, first)
    p, q = first.softmax(-1), second.softmax(-1)
    kl = ((p * (p / q).log()).sum(-1).mean() + (q * (q / p).log()).sum(-1).mean()) / 2
    expected = (F.cross_entropy(first, labels) + F.cross_entropy(second, labels)) / 2 + 0.5 * kl
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-5)
    model.eval()
    assert model(**batch, labels=labels).loss.item() == pytest.approx(
        F.cross_entropy(model(**batch).logits, labels).item()
    )


def test_from_backbone_language_tokens_and_the_collator(tmp_path):
    encoder = tiny.build_model("bert").bert
    encoder.save_pretrained(tmp_path)
    model = GatedBioForSequenceClassification.from_backbone(
        tmp_path, use_lang_token=True, languages=["it", "en"], text_normalize=True
    )
    assert all(torch.equal(model.encoder.state_dict()[k], v) for k, v in encoder.state_dict().items())
    tokenizer = tiny.build_tokenizer()
    size = len(tokenizer)
    assert add_language_tokens(model, tokenizer) == ["<it>", "<en>"]
    assert len(tokenizer) == size + 2 and model.get_input_embeddings().num_embeddings == size + 2
    assert model.config.backbone_config.vocab_size == size + 2  # what rebuilds the encoder on loading
    assert add_language_tokens(model, tokenizer) == []  # idempotent
    batch = GatedBioCollator(tokenizer, model.config)([{"text": "ciao   @bob", "lang": "it", "bio": "", "label": 1}])
    assert tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist()) == [
        "[CLS]",
        "<it>",
        "ciao",
        "[UNK]",
        "[UNK]",
        "[SEP]",
    ]
    assert batch["bio_attention_mask"].sum() == 0 and batch["labels"].tolist() == [1]
    with pytest.raises(ValueError, match="'text'"):
        GatedBioCollator(tokenizer, model.config)([{"bio": "x"}])


def test_trainer_trains_with_the_collator(tmp_path):
    from transformers import Trainer, TrainingArguments

    model = tiny.build_gated_bio(focal_loss=True, r_drop=True)
    rows = [
        {"text": t, "bio": b, "lang": "en", "label": int(b is not None and "love" in b)} for t, b in zip(TEXTS, BIOS)
    ]
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    collator = GatedBioCollator(tiny.build_tokenizer(), model.config)
    settings = dict(output_dir=str(tmp_path), per_device_train_batch_size=3, max_steps=4, learning_rate=1e-2)
    settings.update(report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True, logging_strategy="no")
    with pytest.raises(ValueError, match="remove_unused_columns=False"):  # Trainer's default drops the text fields
        Trainer(model=model, args=TrainingArguments(**settings), train_dataset=rows, data_collator=collator).train()
    args = TrainingArguments(**settings, remove_unused_columns=False)
    result = Trainer(model=model, args=args, train_dataset=rows * 2, data_collator=collator).train()
    assert result.global_step == 4 and torch.isfinite(torch.tensor(result.training_loss))
    changed = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert {"encoder", "gate", "bio_projection", "classifier"} <= changed


def test_round_trip_and_the_pip_installed_loading_path(tmp_path):
    model = tiny.build_gated_bio(best_threshold_global=0.6)
    model.save_pretrained(tmp_path)
    batch = _batch(model, _rows())
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()  # no trust_remote_code
    assert type(loaded) is GatedBioForSequenceClassification
    assert torch.equal(loaded(**batch).logits, model(**batch).logits)


def test_consumer_decisions_equal_the_forward_pass_and_the_bio_matters(tmp_path, hf_home, consumer_python):
    model = tiny.build_gated_bio(use_lang_token=True, languages=["it", "en"], text_normalize=True)
    tokenizer = tiny.build_tokenizer()
    add_language_tokens(model, tokenizer)
    langs = ["it", "en", "es", "it", "en", "it"]
    rows = _rows(langs=langs)
    with torch.no_grad():
        p_bio = model(**_batch(model, rows, tokenizer)).logits.softmax(-1)[:, 1]
        p_none = model(**_batch(model, _rows(bios=[None] * 6, langs=langs), tokenizer)).logits.softmax(-1)[:, 1]
    # A threshold between one row's score with and without its bio, so the bio flips that decision.
    threshold = ((p_bio[0] + p_none[0]) / 2).item()
    model.config.best_threshold_global = threshold
    export_model(model, tmp_path / "repo", tokenizer=tokenizer)
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert (
        config["auto_map"]["AutoModelForSequenceClassification"]
        == "modeling_gated_bio.GatedBioForSequenceClassification"
    )
    install_in_offline_cache(tmp_path / "repo", "org/reclaim-bio", cache_dir=hf_home / "hub")
    calls = [
        {"inputs": TEXTS, "kwargs": {"bio": BIOS, "lang": langs}},
        {
            "inputs": [{"text": t, "bio": b, "lang": lang} for t, b, lang in zip(TEXTS, BIOS, langs)],
            "kwargs": {"batch_size": 4},
        },
        {"inputs": TEXTS, "kwargs": {"lang": langs}},
        {"inputs": TEXTS, "kwargs": {"lang": langs, "bio": [""] * 6}},
    ]
    with_bio, dicts, no_bio, empty_bio = run_stock_pipeline("org/reclaim-bio", hf_home, calls, python=consumer_python)[
        "results"
    ]
    for results, expected in ((with_bio, p_bio), (no_bio, p_none)):
        assert [r["label"] for r in results] == ["LABEL_1" if p >= threshold else "LABEL_0" for p in expected.tolist()]
        scores = [r["score"] if r["label"] == "LABEL_1" else 1 - r["score"] for r in results]
        assert scores == pytest.approx(expected.tolist(), abs=1e-5)
    assert [r["label"] for r in dicts] == [r["label"] for r in with_bio]
    assert empty_bio == no_bio, "a missing bio and an empty bio must give the same decisions"
    assert with_bio[0]["label"] != no_bio[0]["label"], "the bio must change a decision"

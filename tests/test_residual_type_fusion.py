"""The residual type fusion multi-task model: config, forward and losses, phases, loading paths, consumers, Trainer."""

import json
import subprocess
import sys

import pytest
import tiny
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForSequenceClassification, DistilBertConfig

from hubheads import (
    HubheadsTextClassificationPipeline,
    ResidualTypeFusionConfig,
    ResidualTypeFusionForSequenceClassification,
    ResidualTypeFusionPhoBERT,
    export_model,
    install_in_offline_cache,
    run_stock_pipeline,
)
from hubheads.modeling.modeling_hubheads import focal_cross_entropy

TEXTS = tiny.sample_texts(8, seed=3)


def _encode(texts=TEXTS):
    return tiny.build_tokenizer()(texts, return_tensors="pt", padding=True)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"fusion": "concat"}, ValueError, "fusion"),
        ({"pooling": "max"}, ValueError, "pooling"),
        ({"loss_weights": [1.0]}, ValueError, "loss_weights"),
        ({"loss_weights": [1.0, -2]}, ValueError, r"loss_weights\[1\]"),
        ({"class_weights": {"trust": [1.0]}}, ValueError, "class_weights"),
        ({"class_weights": {"credibility": [1.0, 2.0]}}, ValueError, "task names"),
        ({"task_names": ["trust", "trust"]}, ValueError, "task_names"),
        ({"type_label_names": ["only"]}, ValueError, "type_label_names"),
        ({"focal_gamma": float("nan")}, ValueError, "focal_gamma"),
        ({"best_threshold_global": 1.2}, ValueError, "best_threshold_global"),
        ({"backbone_config": {"hidden_size": 32}}, ValueError, "model_type"),
        ({"backbone_config": 32}, TypeError, "backbone_config"),
    ],
)
def test_config_refuses_bad_fields(kwargs, error, match):
    with pytest.raises(error, match=match):
        ResidualTypeFusionConfig(**kwargs)


def test_config_defaults_and_round_trip(tmp_path):
    config = ResidualTypeFusionConfig()
    assert config.backbone_config.model_type == "roberta"
    assert config.type_label_names == [f"type_{i}" for i in range(10)] and config.task_names == ["trust", "type"]
    config = ResidualTypeFusionConfig(
        backbone_config={"model_type": "distilbert", "dim": 32, "n_layers": 2},
        class_weights={"trust": [1.0, 4.9]},
        thresholds_by_lang={"vi": 0.3},
    )
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, ResidualTypeFusionConfig)
    assert isinstance(loaded.backbone_config, DistilBertConfig) and loaded.backbone_config.dim == 32
    assert loaded.class_weights == {"trust": [1.0, 4.9]} and loaded.thresholds_by_lang == {"vi": 0.3}
    assert loaded.task_heads() == {
        "trust": ("logits", ["LABEL_0", "LABEL_1"]),
        "type": ("type_logits", loaded.type_label_names),
    }


@pytest.mark.parametrize("kind", ["distilbert", "bert", "xlm-roberta"])
def test_forward_shapes_on_any_encoder(kind):
    model = tiny.build_residual_type_fusion(kind)
    out = model(**_encode())
    assert out.logits.shape == (len(TEXTS), 2) and out.type_logits.shape == (len(TEXTS), len(tiny.TYPE_LABELS))
    assert out.loss is None


def test_residual_fusion_feeds_the_type_prediction_into_the_trust_head():
    for fusion, should_change in (("residual", True), ("none", False)):
        model = tiny.build_residual_type_fusion(fusion=fusion)
        before = model(**_encode()).logits
        with torch.no_grad():
            model.type_head.weight.mul_(5)
        assert (not torch.allclose(model(**_encode()).logits, before)) == should_change, fusion


def test_losses_follow_the_reference_formulas():
    model = tiny.build_residual_type_fusion(loss_weights=[0.7, 0.3])
    labels, type_labels = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1]), torch.tensor([2, -100, 0, 1, -100, 2, 1, 0])
    out = model(**_encode(), labels=labels, type_labels=type_labels)
    keep = type_labels != -100
    assert out.trust_loss.item() == pytest.approx(F.cross_entropy(out.logits, labels).item(), abs=1e-6)
    assert out.type_loss.item() == pytest.approx(
        F.cross_entropy(out.type_logits[keep], type_labels[keep]).item(), abs=1e-6
    )
    assert out.loss.item() == pytest.approx(0.7 * out.trust_loss.item() + 0.3 * out.type_loss.item(), abs=1e-6)
    only_type = model(**_encode(), type_labels=torch.full((len(TEXTS),), -100))
    assert only_type.type_loss is None and only_type.loss is None

    weighted = tiny.build_residual_type_fusion(class_weights={"trust": [1.0, 4.9]})
    out = weighted(**_encode(), labels=labels)
    expected = F.cross_entropy(out.logits, labels, weight=torch.tensor([1.0, 4.9]))
    assert out.trust_loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_focal_loss_matches_its_definition():
    torch.manual_seed(0)
    logits, labels = torch.randn(12, 3), torch.tensor([0, 1, 2, -100] * 3)
    weight = torch.tensor([1.0, 2.0, 0.5])
    rows = [(logits[i], labels[i]) for i in range(12) if labels[i] != -100]
    numerator = sum(-weight[y] * (1 - torch.softmax(z, -1)[y]) ** 2.5 * torch.log_softmax(z, -1)[y] for z, y in rows)
    expected = numerator / sum(weight[y] for _, y in rows)
    assert focal_cross_entropy(logits, labels, gamma=2.5, weight=weight) == pytest.approx(expected.item(), abs=1e-6)
    plain = F.cross_entropy(logits, labels, weight=weight, ignore_index=-100)
    assert focal_cross_entropy(logits, labels, gamma=0.0, weight=weight) == pytest.approx(plain.item(), abs=1e-6)
    model = tiny.build_residual_type_fusion(focal_loss=True, focal_gamma=2.5)
    out = model(**_encode(), labels=torch.tensor([0, 1] * 4))
    assert out.trust_loss.item() == pytest.approx(
        focal_cross_entropy(out.logits, torch.tensor([0, 1] * 4), 2.5).item()
    )


PHASE_TRAINS = {
    1: {"encoder", "type_head"},
    2: {"trust_head", "type_projection"},
    3: {"encoder", "type_head", "trust_head", "type_projection"},
}


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_each_training_phase_trains_only_its_parameters(phase):
    model = tiny.build_residual_type_fusion()
    model.train()
    model.set_training_phase(phase)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    out = model(**_encode(), labels=torch.tensor([0, 1] * 4), type_labels=torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    expected_loss = {1: out.type_loss, 2: out.trust_loss, 3: out.trust_loss + out.type_loss}[phase]
    assert out.loss.item() == pytest.approx(expected_loss.item(), abs=1e-6)
    out.loss.backward()
    optimizer.step()
    changed = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == PHASE_TRAINS[phase]
    with pytest.raises(ValueError, match="phase"):
        model.set_training_phase(4)


def test_round_trip_and_the_pip_installed_loading_paths(tmp_path):
    model = tiny.build_residual_type_fusion("bert", best_threshold_global=0.6)
    model.save_pretrained(tmp_path)
    encoded = _encode()
    expected = model(**encoded)
    for loader in (
        AutoModelForSequenceClassification,
        ResidualTypeFusionForSequenceClassification,
        ResidualTypeFusionPhoBERT,
    ):
        loaded = loader.from_pretrained(tmp_path).eval()  # no trust_remote_code: hubheads registered the classes
        assert type(loaded) is ResidualTypeFusionForSequenceClassification
        out = loaded(**encoded)
        assert torch.equal(out.logits, expected.logits) and torch.equal(out.type_logits, expected.type_logits)


def test_registration_is_idempotent_and_refuses_a_conflicting_class():
    from hubheads import register_architectures

    register_architectures()
    register_architectures()
    script = """
from transformers import AutoConfig, PretrainedConfig
class Impostor(PretrainedConfig):
    model_type = "residual_type_fusion"
AutoConfig.register("residual_type_fusion", Impostor)
try:
    import hubheads
except ValueError as error:
    print("refused:", error)
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "refused: model_type 'residual_type_fusion' is already registered" in completed.stdout


def test_pipeline_in_process_reports_both_heads():
    model = tiny.build_residual_type_fusion()
    clf = HubheadsTextClassificationPipeline(model=model, tokenizer=tiny.build_tokenizer())
    results = clf(TEXTS)
    out = model(**_encode())
    trust, types = out.logits.softmax(-1), out.type_logits.softmax(-1)
    for result, p_trust, p_type in zip(results, trust, types):
        trust_label = "trusted" if p_trust[1] >= 0.5 else "untrusted"
        assert (result["label"], result["tasks"]["trust"]["label"]) == (trust_label, trust_label)
        assert result["tasks"]["type"]["label"] == tiny.TYPE_LABELS[int(p_type.argmax())]
        assert result["tasks"]["type"]["score"] == pytest.approx(p_type.max().item(), abs=1e-5)
    assert clf(TEXTS[0]) == [results[0]]
    ranked = clf(TEXTS[0], top_k=None)[0]["tasks"]
    assert [r["label"] for r in ranked["type"]] == [tiny.TYPE_LABELS[i] for i in types[0].argsort(descending=True)]
    assert len(clf(TEXTS[0], top_k=2)[0]["tasks"]["type"]) == 2


def _p_trusted_threshold(model) -> float:
    """A trust threshold halfway between two of the model's scores on TEXTS, so it splits the decisions."""
    p = sorted(model(**_encode()).logits.softmax(-1)[:, 1].tolist())
    return (p[3] + p[4]) / 2


def test_consumer_gets_both_heads_equal_to_the_forward_pass(tmp_path, hf_home, consumer_python):
    model = tiny.build_residual_type_fusion()
    threshold = _p_trusted_threshold(model)
    model.config.best_threshold_global = threshold
    model.save_pretrained(tmp_path / "ckpt")
    tiny.build_tokenizer().save_pretrained(tmp_path / "ckpt")
    report = export_model(tmp_path / "ckpt", tmp_path / "repo")
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    model_ref = "modeling_residual_type_fusion.ResidualTypeFusionForSequenceClassification"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_residual_type_fusion.ResidualTypeFusionConfig",
        "AutoModelForSequenceClassification": model_ref,
    }
    assert {"modeling_residual_type_fusion.py", "modeling_hubheads.py", "configuration_hubheads.py"} <= set(
        report.files
    )
    install_in_offline_cache(tmp_path / "repo", "org/trust-type", cache_dir=hf_home / "hub")
    calls = [{"inputs": TEXTS}, {"inputs": TEXTS, "kwargs": {"top_k": None, "batch_size": 3}}]
    out = run_stock_pipeline("org/trust-type", hf_home, calls, python=consumer_python)
    assert out["pipeline_module"].startswith("transformers_modules.")
    results, ranked = out["results"]

    forward = model(**_encode())
    trust, types = forward.logits.softmax(-1), forward.type_logits.softmax(-1)
    for result, full, p_trust, p_type in zip(results, ranked, trust, types):
        decided = "trusted" if p_trust[1] >= threshold else "untrusted"
        assert result["label"] == decided and result["threshold"] == threshold
        assert result["tasks"]["trust"] == {
            "label": decided,
            "score": pytest.approx(p_trust[int(decided == "trusted")].item(), abs=1e-5),
        }
        assert result["tasks"]["type"]["label"] == tiny.TYPE_LABELS[int(p_type.argmax())]
        assert [r["score"] for r in full["tasks"]["type"]] == pytest.approx(
            sorted(p_type.tolist(), reverse=True), abs=1e-5
        )
    assert len({r["label"] for r in results}) == 2, "the threshold must split the trust decisions"


def _imbalanced_rows(count: int = 240, seed: int = 0):
    """About 1 in 6 posts is trusted, when it thanks someone; the type is the language of the greeting."""
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        trusted = int(rng.random() < 0.17)
        type_label = rng.randrange(3)
        words = rng.choices(tiny.WORDS[:15], k=rng.randint(3, 8)) + [("hello", "ciao", "hola")[type_label]]
        if trusted:
            words.append(rng.choice(["thanks", "grazie", "gracias"]))
        rng.shuffle(words)
        rows.append((" ".join(words), trusted, type_label))
    return rows


class _Rows(torch.utils.data.Dataset):
    def __init__(self, rows):
        self.rows, self.tokenizer = rows, tiny.build_tokenizer()

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        text, trusted, type_label = self.rows[index]
        return {**self.tokenizer(text), "labels": trusted, "type_labels": type_label}


def _train_with_trainer(tmp_path, **config_kwargs):
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    model = tiny.build_residual_type_fusion(**config_kwargs)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        num_train_epochs=3,
        learning_rate=3e-3,
        seed=0,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    rows = _imbalanced_rows()
    collator = DataCollatorWithPadding(tiny.build_tokenizer())
    Trainer(model=model, args=args, train_dataset=_Rows(rows), data_collator=collator).train()
    model.eval()
    encoded = tiny.build_tokenizer()([text for text, _, _ in rows], return_tensors="pt", padding=True)
    with torch.no_grad():
        p_trusted = model(**encoded).logits.softmax(-1)[:, 1].tolist()
    return p_trusted, [trusted for _, trusted, _ in rows]


def _recall(p_trusted, labels, threshold):
    hits = [p >= threshold for p, y in zip(p_trusted, labels) if y == 1]
    return sum(hits) / len(hits)


@pytest.mark.slow
def test_trainer_class_weights_and_a_tuned_threshold_raise_minority_recall(tmp_path):
    from hubheads.tuning import best_threshold

    p_plain, labels = _train_with_trainer(tmp_path / "plain")
    argmax_recall = _recall(p_plain, labels, 0.5)
    tuned, _ = best_threshold(p_plain, labels, metric="balanced_accuracy")
    assert tuned < 0.5 and _recall(p_plain, labels, tuned) > argmax_recall
    share = sum(labels) / len(labels)
    p_weighted, _ = _train_with_trainer(tmp_path / "weighted", class_weights={"trust": [1.0, (1 - share) / share]})
    assert _recall(p_weighted, labels, 0.5) > argmax_recall


def test_from_backbone_loads_the_encoder_weights(tmp_path):
    encoder = tiny.build_model("bert").bert
    encoder.save_pretrained(tmp_path)
    model = ResidualTypeFusionForSequenceClassification.from_backbone(tmp_path, type_label_names=tiny.TYPE_LABELS)
    assert model.config.backbone_config.hidden_size == 32 and model.config.type_label_names == tiny.TYPE_LABELS
    loaded, original = model.encoder.state_dict(), encoder.state_dict()
    assert loaded.keys() == original.keys() and all(torch.equal(loaded[k], original[k]) for k in original)

"""The threshold contract: validation that names the key, and the decision rule of each mode."""

import math

import pytest
from transformers import BertConfig, DistilBertConfig, XLMRobertaConfig

from hubheads import DecisionThresholds

REAL_CARD = {  # the reclamation detector's config.json keys, verbatim
    "default_threshold": 0.5,
    "best_threshold_global": 0.7000000000000001,
    "thresholds_by_lang": {"it": 0.70},
}


@pytest.mark.parametrize("config_class", [DistilBertConfig, BertConfig, XLMRobertaConfig])
def test_stock_configs_carry_the_keys_through_a_save(tmp_path, config_class):
    config_class(**REAL_CARD).save_pretrained(tmp_path)
    thresholds = DecisionThresholds.from_config(config_class.from_pretrained(tmp_path))
    assert thresholds.to_dict() == REAL_CARD
    assert thresholds.configured


def test_a_config_without_keys_is_unconfigured():
    thresholds = DecisionThresholds.from_config(DistilBertConfig())
    assert not thresholds.configured
    assert thresholds.resolve("it") == (0.5, "fallback")


@pytest.mark.parametrize(
    "key, value",
    [
        ("default_threshold", 1.5),
        ("default_threshold", -0.1),
        ("default_threshold", math.nan),
        ("default_threshold", "0.5"),
        ("default_threshold", True),
        ("best_threshold_global", [0.7]),
        ("thresholds_by_lang", 0.7),
        ("thresholds_by_lang", {"it": 2}),
        ("thresholds_by_lang", {"it": "high"}),
        ("thresholds_by_lang", {"": 0.5}),
        ("label_thresholds", ["sarcasm"]),
        ("label_thresholds", {"sarcasm": math.inf}),
    ],
)
def test_bad_values_are_refused_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        DecisionThresholds.from_config(DistilBertConfig(**{key: value}))


def test_label_thresholds_must_name_known_labels():
    config = DistilBertConfig(num_labels=2, id2label={0: "sarcasm", 1: "vulgarity"}, label_thresholds={"sarcsm": 0.4})
    with pytest.raises(ValueError, match="label_thresholds.*sarcsm"):
        DecisionThresholds.from_config(config)


def test_language_codes_match_case_insensitively_and_conflicts_are_refused():
    thresholds = DecisionThresholds.from_dict({"thresholds_by_lang": {"IT": 0.7}})
    assert thresholds.resolve("it") == (0.7, "thresholds_by_lang")
    with pytest.raises(ValueError, match="thresholds_by_lang"):
        DecisionThresholds.from_dict({"thresholds_by_lang": {"IT": 0.7, "it": 0.6}})


@pytest.mark.parametrize(
    "lang, mode, expected",
    [
        ("it", "auto", (0.7, "thresholds_by_lang")),
        ("es", "auto", (0.65, "best_threshold_global")),
        (None, "auto", (0.65, "best_threshold_global")),
        ("it", "default", (0.5, "default_threshold")),
        ("it", "global", (0.65, "best_threshold_global")),
        ("it", "by_lang", (0.7, "thresholds_by_lang")),
        ("es", "by_lang", (0.65, "best_threshold_global")),
    ],
)
def test_decision_rule_per_mode(lang, mode, expected):
    thresholds = DecisionThresholds(default_threshold=0.5, best_threshold_global=0.65, thresholds_by_lang={"it": 0.7})
    assert thresholds.resolve(lang, mode) == expected


def test_auto_falls_back_to_default_then_half():
    assert DecisionThresholds(default_threshold=0.4).resolve("it") == (0.4, "default_threshold")
    assert DecisionThresholds(thresholds_by_lang={"it": 0.7}).resolve("en") == (0.5, "fallback")


@pytest.mark.parametrize(
    "thresholds, lang, mode, match",
    [
        (DecisionThresholds(), None, "global", "best_threshold_global"),
        (DecisionThresholds(), "it", "by_lang", "thresholds_by_lang"),
        (DecisionThresholds(thresholds_by_lang={"it": 0.7}), None, "by_lang", "lang"),
        (DecisionThresholds(), None, "tuned", "threshold_mode"),
    ],
)
def test_modes_that_cannot_apply_are_errors(thresholds, lang, mode, match):
    with pytest.raises(ValueError, match=match):
        thresholds.resolve(lang, mode)


def test_label_thresholds_win_for_their_label_only():
    thresholds = DecisionThresholds(default_threshold=0.3, label_thresholds={"sarcasm": 0.8})
    assert thresholds.resolve_label("sarcasm") == 0.8
    assert thresholds.resolve_label("vulgarity") == 0.3
    assert thresholds.resolve_label("sarcasm", mode="default") == 0.3


@pytest.mark.parametrize(
    "thresholds, problem_type, num_labels, match",
    [
        (DecisionThresholds(label_thresholds={"a": 0.4}), "single_label_classification", 2, "label_thresholds"),
        (DecisionThresholds(best_threshold_global=0.7), "single_label_classification", 3, "num_labels=3"),
    ],
)
def test_thresholds_that_cannot_decide_for_the_model_are_refused(thresholds, problem_type, num_labels, match):
    with pytest.raises(ValueError, match=match):
        thresholds.check_applies_to(problem_type, num_labels)


def test_thresholds_apply_to_binary_and_multi_label_models():
    DecisionThresholds(best_threshold_global=0.7).check_applies_to(None, 2)
    DecisionThresholds(label_thresholds={"a": 0.4}).check_applies_to("multi_label_classification", 5)

"""Tiny random backbones and a locally built tokenizer, like transformers' `ModelTester` classes.

Hidden size 32, 2 layers, a vocabulary of a few dozen words: a model builds in milliseconds and needs no download.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    PreTrainedTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
)

SPECIALS = ["[UNK]", "[PAD]", "[CLS]", "[SEP]"]  # [PAD] is id 1, as in XLM-R, so every backbone agrees
WORDS = (
    "hello world good bad great awful love hate post reply thread user people friend enemy "
    "ciao mondo buono cattivo amore odio amico gente hola mundo bueno malo amor odio amigo "
    "gracias grazie thanks today never always maybe very not"
).split()
VOCAB = {token: index for index, token in enumerate(dict.fromkeys(SPECIALS + WORDS))}
MULTI_LABELS = ["aspersion", "hyperbole", "namecalling", "sarcasm", "vulgarity"]
#: The size of every tiny BERT-shaped encoder (DistilBERT names the same sizes differently).
ENCODER_SIZES = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}


def build_tokenizer(
    model_max_length: int | None = None, model_input_names: tuple[str, ...] = ("input_ids", "attention_mask")
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `VOCAB` with BERT-style [CLS] ... [SEP] framing."""
    tokenizer = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    cls, sep = VOCAB["[CLS]"], VOCAB["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    kwargs = {"model_max_length": model_max_length} if model_max_length else {}
    kwargs["model_input_names"] = list(model_input_names)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        **kwargs,
    )


def tiny_config(kind: str = "distilbert", num_labels: int = 2, **config_kwargs):
    """The config of a tiny `kind` encoder ("distilbert", "bert" or "xlm-roberta")."""
    common = {"vocab_size": len(VOCAB), "pad_token_id": VOCAB["[PAD]"], "num_labels": num_labels, **config_kwargs}
    if kind == "distilbert":
        return DistilBertConfig(dim=32, hidden_dim=64, n_layers=2, n_heads=2, max_position_embeddings=64, **common)
    if kind == "bert":
        return BertConfig(**{"max_position_embeddings": 64, **ENCODER_SIZES, **common})
    if kind == "xlm-roberta":
        # 34 positions: 32 usable after the padding offset.
        return XLMRobertaConfig(**{"max_position_embeddings": 34, **ENCODER_SIZES, **common})
    raise ValueError(f"unknown kind {kind!r}")


MODEL_CLASSES = {
    "distilbert": DistilBertForSequenceClassification,
    "bert": BertForSequenceClassification,
    "xlm-roberta": XLMRobertaForSequenceClassification,
}


def build_model(kind: str = "distilbert", num_labels: int = 2, seed: int = 0, **config_kwargs):
    """A random tiny `*ForSequenceClassification` of `kind`."""
    torch.manual_seed(seed)
    model = MODEL_CLASSES[kind](tiny_config(kind, num_labels, **config_kwargs))
    # Random heads put every probability near 0.5; a wider last layer spreads them so thresholds matter.
    last_linear = [module for module in model.classifier.modules() if isinstance(module, torch.nn.Linear)][-1]
    torch.nn.init.normal_(last_linear.weight, std=10.0)
    return model.eval()


def save_checkpoint(path: Path, kind: str = "distilbert", num_labels: int = 2, **config_kwargs) -> Path:
    """Save a tiny model and the tokenizer to `path` as a trainer would, and return `path`."""
    build_model(kind, num_labels, **config_kwargs).save_pretrained(path)
    build_tokenizer().save_pretrained(path)
    return path


def stock_and_hubheads(model, tokenizer=None) -> tuple:
    """The stock `TextClassificationPipeline` and the installed `HubheadsTextClassificationPipeline` on one model."""
    from transformers import TextClassificationPipeline

    from hubheads import HubheadsTextClassificationPipeline

    tokenizer = tokenizer or build_tokenizer()
    return (
        TextClassificationPipeline(model=model, tokenizer=tokenizer),
        HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer),
    )


def sample_texts(count: int, seed: int = 0, min_words: int = 2, max_words: int = 12) -> list[str]:
    """Deterministic random sentences over the tiny vocabulary."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(min_words, max_words))) for _ in range(count)]


def probabilities(model, tokenizer, texts: list[str], multi_label: bool = False) -> list[list[float]]:
    """Reference scores: each text tokenized alone (truncated like the pipeline) and run through the model."""
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=32)
            logits = model(**encoded).logits[0].float()
            rows.append((torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)).tolist())
    return rows


TYPE_LABELS = ["news", "opinion", "advert"]


def build_thresholded_by_lang(kind: str = "xlm-roberta"):
    """A binary model with a global threshold (0.6) and an Italian one (0.4) in its config."""
    model = build_model(kind)
    model.config.best_threshold_global, model.config.thresholds_by_lang = 0.6, {"it": 0.4}
    return model


def build_multi_label(kind: str = "distilbert"):
    """A multi-label model over `MULTI_LABELS` (no thresholds: 0.5 per label)."""
    return build_model(
        kind,
        num_labels=len(MULTI_LABELS),
        problem_type="multi_label_classification",
        id2label=dict(enumerate(MULTI_LABELS)),
        label2id={label: i for i, label in enumerate(MULTI_LABELS)},
    )


def build_residual_type_fusion(kind: str = "distilbert", seed: int = 0, **config_kwargs):
    """A random tiny trust + type model over a tiny `kind` encoder."""
    from hubheads import ResidualTypeFusionConfig, ResidualTypeFusionForSequenceClassification

    torch.manual_seed(seed)
    config = ResidualTypeFusionConfig(
        backbone_config=tiny_config(kind),
        type_label_names=config_kwargs.pop("type_label_names", TYPE_LABELS),
        id2label=config_kwargs.pop("id2label", {0: "untrusted", 1: "trusted"}),
        **config_kwargs,
    )
    model = ResidualTypeFusionForSequenceClassification(config)
    for head in (model.type_head, model.trust_head):  # spread the probabilities, as build_model does
        torch.nn.init.normal_(head.weight, std=0.3)
    return model.eval()


def build_gated_bio(kind: str = "xlm-roberta", seed: int = 0, **config_kwargs):
    """A random tiny gated-bio classifier over a tiny `kind` encoder."""
    from hubheads import GatedBioConfig, GatedBioForSequenceClassification

    torch.manual_seed(seed)
    model = GatedBioForSequenceClassification(GatedBioConfig(backbone_config=tiny_config(kind), **config_kwargs))
    torch.nn.init.normal_(model.classifier.weight, std=0.5)  # spread the probabilities, as build_model does
    if model.bio_projection is not None:
        torch.nn.init.normal_(model.bio_projection.weight, std=0.5)
    return model.eval()


def count_encoded_rows(model) -> list:
    """Record the batch size of every call to a wrapping model's encoder (`model.encoder`: posts and bios go through
    the same one), in the returned list."""
    rows_encoded: list = []
    forward = model.encoder.forward

    def count(*args, **kwargs):
        rows_encoded.append(kwargs["input_ids"].shape[0])
        return forward(*args, **kwargs)

    model.encoder.forward = count
    return rows_encoded

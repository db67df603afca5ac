"""Configuration of the gated dual-input classifier: a post and its author's profile bio."""

import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Optional

from transformers import PretrainedConfig

from .configuration_backbone import backbone_config_from
from .configuration_hubheads import (
    POOLING_MODES,
    DecisionThresholds,
    check_choice,
    check_class_weights,
    check_non_negative,
)

# Imported here too, though only configuration_backbone uses it: transformers 4.x and 5.0 copy only the direct relative
# imports of a remote-code file when they load a repo from a local folder (an Inference Endpoint, a downloaded repo).
from .configuration_new_gte import NewGteConfig  # noqa: F401

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The `text_normalize` step: NFKC Unicode, URLs → `URL`, user mentions → `@USER`, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _URL.sub("URL", text)
    text = _MENTION.sub("@USER", text)
    return _SPACES.sub(" ", text).strip()


class GatedBioConfig(PretrainedConfig):
    """Configuration of [`GatedBioForSequenceClassification`].

    The flags mirror the training trials of the public reclamation detectors (USE_BIO, GATED_BIO, USE_LANG_TOKEN,
    FOCAL_LOSS, R_DROP, TEXT_NORMALIZE, MAX_LENGTH). The threshold keys of the hubheads contract apply as for any
    binary classifier.

    Args:
        backbone_config (`PretrainedConfig` or `dict`, *optional*):
            The shared encoder of posts and bios (any `AutoModel`), as a config or a dict with `model_type`.
            Defaults to XLM-RoBERTa.
        use_bio (`bool`, *optional*, defaults to `True`):
            Read the author's bio next to the post.
        gated_bio (`bool`, *optional*, defaults to `True`):
            Fuse the bio through a learned gate, `post + gate(post, bio) * W bio`; with `False` (and `use_bio`) the
            classifier reads the concatenation `[post; bio]`.
        use_lang_token (`bool`, *optional*, defaults to `False`):
            Prefix each post with its language token (`lang_token_format`) for the languages in `languages`.
        languages (`list[str]`, *optional*):
            The language codes that have a token; other languages get none.
        lang_token_format (`str`, *optional*, defaults to `"<{lang}>"`):
            How a language code becomes a token.
        pooling (`str`, *optional*, defaults to `"cls"`):
            `"cls"` or `"mean"`.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the pooled vectors (also what R-Drop regularises).
        focal_loss (`bool`, *optional*, defaults to `False`) and focal_gamma (`float`, *optional*, defaults to 2.0):
            Focal loss instead of cross-entropy.
        class_weights (`list[float]`, *optional*):
            Per-class loss weights.
        r_drop (`bool`, *optional*, defaults to `False`) and r_kl_alpha (`float`, *optional*, defaults to 0.5):
            R-Drop: in training, two dropout passes, their mean loss plus `r_kl_alpha` times their symmetric KL.
        text_normalize (`bool`, *optional*, defaults to `False`):
            Apply `normalize_text` to posts and bios, in training (the collator) and inference (the pipeline).
        max_seq_length (`int`, *optional*, defaults to 256):
            Token budget of a post and of a bio (the trials' MAX_LENGTH; not named `max_length`, which
            transformers reserves for generation).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the heads' initial weights.
    """

    model_type = "gated_bio_classifier"

    def __init__(
        self,
        backbone_config: Any = None,
        use_bio: bool = True,
        gated_bio: bool = True,
        use_lang_token: bool = False,
        languages: Optional[Sequence[str]] = None,
        lang_token_format: str = "<{lang}>",
        pooling: str = "cls",
        classifier_dropout: float = 0.1,
        focal_loss: bool = False,
        focal_gamma: float = 2.0,
        class_weights: Optional[Sequence[float]] = None,
        r_drop: bool = False,
        r_kl_alpha: float = 0.5,
        text_normalize: bool = False,
        max_seq_length: int = 256,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.backbone_config = backbone_config_from(backbone_config, default_model_type="xlm-roberta")
        for key, value in (("use_bio", use_bio), ("gated_bio", gated_bio), ("use_lang_token", use_lang_token)):
            if not isinstance(value, bool):
                raise ValueError(f"`{key}` must be True or False, got {value!r}.")
        self.use_bio, self.gated_bio, self.use_lang_token = use_bio, gated_bio, use_lang_token
        languages = list(languages or [])
        if not all(isinstance(lang, str) and lang for lang in languages):
            raise ValueError(f"`languages` must be a list of language codes, got {languages!r}.")
        if use_lang_token and not languages:
            raise ValueError(
                "`use_lang_token=True` needs `languages`, the codes that get a token (e.g. ['it', 'en'])."
            )
        self.languages = [lang.lower() for lang in languages]
        if "{lang}" not in lang_token_format:
            raise ValueError(f"`lang_token_format` must contain '{{lang}}', got {lang_token_format!r}.")
        self.lang_token_format = lang_token_format
        self.pooling = check_choice(pooling, POOLING_MODES, "pooling")
        self.classifier_dropout = check_non_negative(classifier_dropout, "classifier_dropout")
        self.focal_loss = bool(focal_loss)
        self.focal_gamma = check_non_negative(focal_gamma, "focal_gamma")
        self.r_drop = bool(r_drop)
        self.r_kl_alpha = check_non_negative(r_kl_alpha, "r_kl_alpha")
        self.text_normalize = bool(text_normalize)
        if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 2:
            raise ValueError(f"`max_seq_length` must be an integer >= 2, got {max_seq_length!r}.")
        self.max_seq_length = max_seq_length
        self.initializer_range = check_non_negative(initializer_range, "initializer_range")
        super().__init__(**kwargs)
        num_labels = int(self.num_labels or 2)
        self.class_weights = check_class_weights(class_weights, num_labels, "class_weights")
        if self.r_drop and self.problem_type in ("regression", "multi_label_classification"):
            raise ValueError(f"`r_drop` compares softmax distributions; it does not apply to {self.problem_type!r}.")
        DecisionThresholds.from_config(self).check_applies_to(self.problem_type, num_labels)

    def language_tokens(self) -> list:
        """The tokens `use_lang_token` adds to the tokenizer, one per language."""
        return [self.lang_token_format.format(lang=lang) for lang in self.languages]

    def prepare_text(self, text: str, lang: Optional[str] = None) -> str:
        """A post as the model was trained to read it: normalised if `text_normalize`, then prefixed with its
        language token if `use_lang_token` and the language has one. The collator and the pipeline both call this."""
        if self.text_normalize:
            text = normalize_text(text)
        if self.use_lang_token and lang is not None and lang.lower() in self.languages:
            text = f"{self.lang_token_format.format(lang=lang.lower())} {text}"
        return text

    def prepare_bio(self, bio: Optional[str]) -> Optional[str]:
        """A bio as the model reads it, or `None` for no bio (missing, empty or blank: all mean the same)."""
        if bio is None or not self.use_bio:
            return None
        if not isinstance(bio, str):
            raise TypeError(f"A bio must be a string or None, got {type(bio).__name__}.")
        bio = normalize_text(bio) if self.text_normalize else bio.strip()
        return bio or None


__all__ = ["GatedBioConfig", "normalize_text"]

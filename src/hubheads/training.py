"""Training helpers for the gated-bio classifier: a data collator for `transformers.Trainer`, language tokens.

The collator prepares posts and bios with the model config's own `prepare_text` / `prepare_bio`, the same methods
the pipeline calls at inference, so normalisation and language tokens match between training and serving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def add_language_tokens(model: Any, tokenizer: Any) -> list[str]:
    """Add the config's language tokens to `tokenizer` and grow the model's embeddings; return the new tokens.

    Needed once before training a `use_lang_token` model; save the tokenizer with the model afterwards.
    """
    tokens = [t for t in model.config.language_tokens() if t not in tokenizer.get_vocab()]
    if tokens:
        tokenizer.add_tokens(tokens, special_tokens=True)
        model.resize_token_embeddings(len(tokenizer))
    return tokens


@dataclass
class GatedBioCollator:
    """Turn rows `{"text", "bio", "lang", "label"}` (bio, lang and label optional) into a gated-bio batch.

    Use with `Trainer(..., data_collator=GatedBioCollator(tokenizer, model.config))` and
    `TrainingArguments(remove_unused_columns=False)`: otherwise Trainer drops the `text`, `bio` and `lang` fields
    (they are not arguments of the model's forward) before the collator sees them.

    Args:
        tokenizer (`PreTrainedTokenizerBase`): the model's tokenizer.
        config (`GatedBioConfig`): the model's config (normalisation, language tokens, `max_seq_length`).
    """

    tokenizer: Any
    config: Any

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        if not rows:
            raise ValueError("GatedBioCollator got an empty batch.")
        for row in rows:
            if isinstance(row, Mapping) and "text" not in row and set(row) <= {"label", "labels", "label_ids"}:
                raise ValueError(
                    "GatedBioCollator got rows without 'text': Trainer removed the columns the model's forward does "
                    "not name. Set TrainingArguments(remove_unused_columns=False)."
                )
            if not isinstance(row, Mapping) or not isinstance(row.get("text"), str):
                raise ValueError(
                    f"Each row needs a 'text' string (and optionally 'bio', 'lang', 'label'); got {row!r}."
                )
        texts = [self.config.prepare_text(row["text"], row.get("lang")) for row in rows]
        encoding = dict(self._encode(texts))
        if self.config.use_bio:
            bios = [self.config.prepare_bio(row.get("bio")) for row in rows]
            bio_encoding = self._encode([bio or "" for bio in bios])
            has_bio = torch.tensor([bio is not None for bio in bios]).unsqueeze(1)
            encoding["bio_input_ids"] = bio_encoding["input_ids"]
            encoding["bio_attention_mask"] = bio_encoding["attention_mask"] * has_bio  # no bio: an all-zero mask
        labels = [row.get("label", row.get("labels")) for row in rows]
        if any(label is not None for label in labels):
            if any(label is None for label in labels):
                raise ValueError("Either every row of a batch has a 'label' or none has.")
            encoding["labels"] = torch.tensor(labels)
        return encoding

    def _encode(self, texts: list[str]):
        return self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.config.max_seq_length,
            return_tensors="pt",
            return_token_type_ids=False,
        )


__all__ = ["GatedBioCollator", "add_language_tokens"]

"""Training helpers: the demo's plain fine-tuning loop (`train_steps`, `text_batches`), and for the gated-bio
classifier a data collator for `transformers.Trainer` and language tokens.

The collator prepares posts and bios with the model config's own `prepare_text` / `prepare_bio`, the same methods
the pipeline calls at inference, so normalisation and language tokens match between training and serving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hubheads.errors import InvalidInputError


def add_language_tokens(model: Any, tokenizer: Any) -> list[str]:
    """Add the config's language tokens to `tokenizer` and grow the model's embeddings; return the new tokens.

    Needed once before training a `use_lang_token` model; save the tokenizer with the model afterwards.
    """
    tokens = [t for t in model.config.language_tokens() if t not in tokenizer.get_vocab()]
    if tokens:
        tokenizer.add_tokens(tokens, special_tokens=True)
        model.resize_token_embeddings(len(tokenizer))
    return tokens


def text_batches(tokenizer: Any, texts: list[str], targets: Any) -> Any:
    """A function of row indices returning the batch of those `texts` with their targets: `targets` is the `labels`
    tensor, or a dict of label tensors by argument name (`{"labels": ..., "type_labels": ...}`)."""
    targets = targets if isinstance(targets, dict) else {"labels": targets}

    def batch(indices: Any) -> dict[str, Any]:
        encoded = tokenizer([texts[i] for i in indices], padding=True, truncation=True, return_tensors="pt")
        return {**encoded, **{name: values[indices] for name, values in targets.items()}}

    return batch


def train_steps(
    model: Any,
    batches: Any,
    size: int,
    steps: int,
    description: str,
    *,
    batch_size: int = 16,
    learning_rate: float = 5e-5,
    seed: int = 0,
) -> None:
    """Plain AdamW fine-tuning, as the demo trains: `steps` batches of `batch_size` rows from `batches(indices)`, the
    `size` rows shuffled anew each epoch by a generator seeded with `seed`; the model is left in eval mode."""
    import torch
    from tqdm.auto import tqdm

    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    order: list[Any] = []
    while len(order) < steps:
        order += torch.randperm(size, generator=generator).split(batch_size)
    with tqdm(order[:steps], desc=description, unit="step", mininterval=2) as progress:
        for indices in progress:
            loss = model(**batches(indices)).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()


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
            raise InvalidInputError("GatedBioCollator got an empty batch.")
        for row in rows:
            if isinstance(row, Mapping) and "text" not in row and set(row) <= {"label", "labels", "label_ids"}:
                raise InvalidInputError(
                    "GatedBioCollator got rows without 'text': Trainer removed the columns the model's forward does "
                    "not name. Set TrainingArguments(remove_unused_columns=False)."
                )
            if not isinstance(row, Mapping) or not isinstance(row.get("text"), str):
                raise InvalidInputError(
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
                raise InvalidInputError("Either every row of a batch has a 'label' or none has.")
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


__all__ = ["GatedBioCollator", "add_language_tokens", "text_batches", "train_steps"]

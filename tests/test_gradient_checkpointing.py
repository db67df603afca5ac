"""The hubheads architectures train with gradient checkpointing, as the encoders they wrap do."""

from __future__ import annotations

import pytest
import tiny
import torch

BUILDERS = {
    "gated-bio-bert": lambda: tiny.build_gated_bio("bert", use_bio=True, gated_bio=True),
    "residual-type-fusion-distilbert": lambda: tiny.build_residual_type_fusion("distilbert"),
}


def _batch(model) -> dict:
    tokenizer = tiny.build_tokenizer()
    texts = tiny.sample_texts(4, seed=5)
    encoded = tokenizer(texts, return_tensors="pt", padding=True, return_token_type_ids=False)
    batch = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    batch["labels"] = torch.tensor([0, 1, 1, 0])
    if getattr(model.config, "use_bio", False):
        bios = tokenizer(["a bio", "", "another bio", "x"], return_tensors="pt", padding=True)
        batch.update(bio_input_ids=bios["input_ids"], bio_attention_mask=bios["attention_mask"])
    return batch


def _gradients(model, batch) -> tuple[float, dict[str, torch.Tensor]]:
    model.train()
    model.zero_grad()
    torch.manual_seed(0)  # the same dropout masks in both runs (checkpointing replays the RNG state)
    loss = model(**batch).loss
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", BUILDERS)
def test_a_training_step_with_gradient_checkpointing_matches_one_without(name):
    model = BUILDERS[name]()
    assert model.supports_gradient_checkpointing
    batch = _batch(model)
    loss, gradients = _gradients(model, batch)
    model.gradient_checkpointing_enable()  # raised "does not support gradient checkpointing" before
    assert any(getattr(module, "gradient_checkpointing", False) for module in model.encoder.modules())
    checkpointed_loss, checkpointed = _gradients(model, batch)
    assert checkpointed_loss == pytest.approx(loss, rel=1e-6)
    assert set(checkpointed) == set(gradients) and any("encoder" in key for key in gradients)
    for key, value in gradients.items():
        torch.testing.assert_close(checkpointed[key], value, rtol=1e-5, atol=1e-6, msg=key)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {key: p.detach().clone() for key, p in model.named_parameters()}
    optimizer.step()  # one step: the checkpointed gradients reach every trained weight
    layers = [key for key, _ in model.named_parameters() if key.startswith("encoder.") and ".layer." in key]
    assert layers and any(not torch.equal(p, before[key]) for key, p in model.named_parameters() if key in layers)

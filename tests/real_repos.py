"""Reproductions of the public repos hubheads exists for, in their real forms, with tiny weights.

- `save_new_format`: a gte-multilingual-base fine-tune as on the Hub: config.json with `model_type: "new"` and an
  `auto_map` into the code repo `Alibaba-NLP/new-impl`, which `NEW_IMPL` (tests/new_impl, written here from the public
  description of the architecture) stands in for; the reclamation detector's threshold keys and postprocessing.json.
- `save_pickle_only_base`: `vinai/phobert-base` as on the Hub: only `pytorch_model.bin` on main, safetensors in a pull
  request ref.
- `save_own_class_checkpoint`: a multi-task checkpoint saved by an author's own PyTorch class: config.json without
  `model_type`, keys `roberta.*`, `trust_head.*`, `type_head.*`, `type_projection.*`.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import tiny
import torch
from safetensors.torch import save_file

from hubheads.offline_hub import offline_environment

if TYPE_CHECKING:
    from fakehub import FakeHub

NEW_IMPL = Path(__file__).parent / "new_impl"
CODE_REPO = "Alibaba-NLP/new-impl"
NEW_AUTO_MAP = {
    "AutoConfig": f"{CODE_REPO}--configuration.NewConfig",
    "AutoModel": f"{CODE_REPO}--modeling.NewModel",
    "AutoModelForSequenceClassification": f"{CODE_REPO}--modeling.NewForSequenceClassification",
}
#: The reclamation detector card's thresholds.
RECLAMATION_THRESHOLDS = {
    "default_threshold": 0.5,
    "best_threshold_global": 0.7000000000000001,
    "thresholds_by_lang": {"it": 0.7},
}


def new_format_model(seed: int = 0, rope_scaling: dict | None = None, **config_kwargs):
    """A random tiny `NewForSequenceClassification` (the reference in tests/new_impl)."""
    sys.path.insert(0, str(NEW_IMPL.parent))
    from new_impl.configuration import NewConfig
    from new_impl.modeling import NewForSequenceClassification

    torch.manual_seed(seed)
    config = NewConfig(
        vocab_size=len(tiny.VOCAB),
        **tiny.ENCODER_SIZES,
        max_position_embeddings=64,
        pad_token_id=tiny.VOCAB["[PAD]"],
        rope_scaling=rope_scaling,
        **config_kwargs,
    )
    model = NewForSequenceClassification(config)
    torch.nn.init.normal_(model.classifier.weight, std=10.0)  # spread the probabilities, as tiny.build_model does
    return model.eval()


def save_new_format(path: Path, seed: int = 0, rope_scaling: dict | None = None, thresholds: bool = True, **kwargs):
    """A fine-tuned gte-multilingual-base reclamation detector folder, as its author's Hub repo holds it."""
    model = new_format_model(seed, rope_scaling, **kwargs)
    model.save_pretrained(path)
    tiny.build_tokenizer().save_pretrained(path)
    config = json.loads((path / "config.json").read_text())
    config.pop("ntk_scaling", None)
    config.update(
        model_type="new",
        rope_scaling=rope_scaling,
        auto_map=NEW_AUTO_MAP,
        architectures=["NewForSequenceClassification"],
        id2label={"0": "not_reclaimed", "1": "reclaimed"},
        label2id={"not_reclaimed": 0, "reclaimed": 1},
    )
    if thresholds:
        config.update(RECLAMATION_THRESHOLDS)
        (path / "postprocessing.json").write_text(json.dumps(RECLAMATION_THRESHOLDS))
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return model


def save_pickle_only_base(path: Path, safetensors: bool) -> torch.nn.Module:
    """A tiny RoBERTa-family base (PhoBERT is RoBERTa), with pickle weights only or safetensors only."""
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(3)
    config = RobertaConfig(
        vocab_size=len(tiny.VOCAB),
        **tiny.ENCODER_SIZES,
        max_position_embeddings=40,
        pad_token_id=tiny.VOCAB["[PAD]"],
    )
    model = RobertaModel(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(path)
    tiny.build_tokenizer().save_pretrained(path)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    if safetensors:
        save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(state, path / "pytorch_model.bin")
    return model


def save_own_class_checkpoint(path: Path, seed: int = 5) -> torch.nn.Module:
    """A trust + type model saved by the author's own class: `roberta.*` encoder keys, no `model_type`."""
    model = tiny.build_residual_type_fusion("xlm-roberta", seed=seed)
    state = {
        ("roberta." + key[len("encoder.") :] if key.startswith("encoder.") else key): value.contiguous()
        for key, value in model.state_dict().items()
    }
    path.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps({"num_trust_labels": 2, "num_type_labels": 3, "dropout": 0.1}))
    tiny.build_tokenizer().save_pretrained(path)
    return model


def run_cli(args: list[str], hf_home: Path, python: str | None = None) -> subprocess.CompletedProcess:
    """`hubheads ARGS` in a fresh, offline process whose Hub cache is `hf_home/hub`."""
    return subprocess.run(
        [python or sys.executable, "-m", "hubheads_cli", *args],
        capture_output=True,
        text=True,
        env=offline_environment(hf_home),
        timeout=600,
    )


def cli(args: list[str]) -> tuple[int, str, str]:
    """`hubheads ARGS` in this process: (exit code, stdout, stderr)."""
    from hubheads_cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exit:  # argparse's answer to a bad argument (status 2) or --help (0)
            code = int(exit.code or 0)
    return code, out.getvalue(), err.getvalue()


@contextmanager
def on_fake_hub(tmp: Path) -> Iterator[FakeHub]:
    """The `hub` fixture for a module-scoped fixture: the fake Hub, its download cache (the author's) in `tmp`."""
    from fakehub import fake_hub  # needs huggingface_hub 2.x: the modules that use it skip on older releases

    with pytest.MonkeyPatch.context() as monkeypatch, fake_hub(monkeypatch, tmp) as hub:
        yield hub

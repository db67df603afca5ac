"""Both hubheads architectures load through remote code (no hubheads) and through the pip-installed package with
exactly the same logits, on the newest transformers and on 4.57.6."""

import json
import os
import subprocess
import sys

import pytest
import tiny
import torch

from hubheads import export_model, install_in_offline_cache

TEXTS = tiny.sample_texts(5, seed=21)
BIOS = ["love people", "", "hate enemy", "grazie amico", "never"]

# Loads "org/arch" with AutoModelForSequenceClassification, the way a remote-code or a pip user does, and prints the
# logits of every output head on the texts (with the bios as second input for a model that reads them).
SCRIPT = """
import json, sys
path, texts, bios = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
remote = path == "remote"
if remote:
    sys.modules["hubheads"] = None
else:
    import hubheads
from transformers import AutoModelForSequenceClassification, AutoTokenizer
model = AutoModelForSequenceClassification.from_pretrained("org/arch", trust_remote_code=remote).eval()
tokenizer = AutoTokenizer.from_pretrained("org/arch", trust_remote_code=remote)
inputs = dict(tokenizer(texts, return_tensors="pt", padding=True, return_token_type_ids=False))
if getattr(model.config, "use_bio", False):
    bio = tokenizer(bios, return_tensors="pt", padding=True, return_token_type_ids=False)
    inputs.update(bio_input_ids=bio["input_ids"], bio_attention_mask=bio["attention_mask"])
out = model(**inputs)
heads = {key: value.tolist() for key, value in out.items() if key.endswith("logits")}
budget = getattr(model.config, "max_seq_length", None)
print(json.dumps({"module": type(model).__module__, "heads": heads, "max_seq_length": budget}))
"""


@pytest.mark.parametrize("arch", ["residual_type_fusion", "gated_bio"])
def test_remote_code_and_pip_installed_paths_give_the_same_logits(tmp_path, hf_home, consumer_python, arch):
    if arch == "residual_type_fusion":
        model = tiny.build_residual_type_fusion("xlm-roberta")
    else:
        model = tiny.build_gated_bio(max_seq_length=48)
    export_model(model, tmp_path / "repo", tokenizer=tiny.build_tokenizer())
    install_in_offline_cache(tmp_path / "repo", "org/arch", cache_dir=hf_home / "hub")
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    runs = {}
    for path, python in (("remote", consumer_python), ("pip", sys.executable)):
        command = [python, "-c", SCRIPT, path, json.dumps(TEXTS), json.dumps(BIOS)]
        runs[path] = json.loads(subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout)
    assert runs["remote"]["module"].startswith("transformers_modules.")
    assert runs["pip"]["module"].startswith("hubheads.modeling.modeling_")
    assert runs["remote"]["heads"].keys() == runs["pip"]["heads"].keys() and "logits" in runs["pip"]["heads"]
    # transformers 4.x configs carry a generation `max_length=20`; the trained token budget is a field of its own.
    expected_budget = 48 if arch == "gated_bio" else None
    assert runs["remote"]["max_seq_length"] == runs["pip"]["max_seq_length"] == expected_budget
    for key in runs["pip"]["heads"]:
        assert torch.equal(torch.tensor(runs["remote"]["heads"][key]), torch.tensor(runs["pip"]["heads"][key])), key

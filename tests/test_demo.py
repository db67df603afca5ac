"""`hubheads demo` end to end on the real MiniLM backbone, with a short training budget."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from hubheads.cli import main

HUBHEADS = str(Path(sys.executable).parent / "hubheads")


@pytest.mark.slow
def test_demo_trains_exports_and_consumes(tmp_path):
    out = tmp_path / "demo"
    completed = subprocess.run(
        [HUBHEADS, "demo", "--out", str(out), "--train-seconds", "4"], capture_output=True, text=True, timeout=900
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    stdout = completed.stdout
    binary = json.loads((out / "repos/supportive-minilm/config.json").read_text())
    assert binary["default_threshold"] == 0.5 and 0 <= binary["best_threshold_global"] <= 1
    # Per-language thresholds are written only when they do not lower the whole dev set's score (see tune).
    binary_reports = json.loads((out / "repos/supportive-minilm/reports.json").read_text())
    assert set(binary_reports["by_lang"]) == {"en", "es", "it"}
    assert binary.get("thresholds_by_lang", {}) == (
        binary_reports["by_lang_tuned"] if binary_reports["by_lang_kept"] else {}
    )
    assert "pipeline_hubheads.HubheadsTextClassificationPipeline" in json.dumps(binary["custom_pipelines"])
    tags = json.loads((out / "repos/post-tags-minilm/config.json").read_text())
    assert tags["problem_type"] == "multi_label_classification"
    assert set(tags["label_thresholds"]) == {"question", "complaint", "praise", "request"}
    multi_task = json.loads((out / "repos/trust-type-minilm/config.json").read_text())
    assert multi_task["model_type"] == "residual_type_fusion" and "AutoConfig" in multi_task["auto_map"]
    assert multi_task["type_label_names"] == ["news", "opinion", "advert", "question"]
    assert 0 <= multi_task["best_threshold_global"] <= 1
    gated = json.loads((out / "repos/reclaim-bio-minilm/config.json").read_text())
    assert gated["model_type"] == "gated_bio_classifier" and gated["use_lang_token"] and gated["text_normalize"]
    tokenizer = json.loads((out / "repos/reclaim-bio-minilm/tokenizer.json").read_text())
    assert {"<en>", "<it>", "<es>"} <= {token["content"] for token in tokenizer["added_tokens"]}
    for name in ("supportive-minilm", "post-tags-minilm", "trust-type-minilm", "reclaim-bio-minilm"):
        assert (out / f"hf_home/hub/models--hubheads-demo--{name}/refs/main").is_file()
        # The author's loop: tune wrote reports.json, card the README (re-parsed with model-index), verify passed.
        reports = json.loads((out / f"repos/{name}/reports.json").read_text())
        assert reports["data"]["file"].startswith("dev_")
        card = ModelCard((out / f"repos/{name}/README.md").read_text()).data
        assert card.eval_results and card.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert stdout.count("verify 8 checks ok") == 4
    # The consumer's decisions came from the repo's copy of the pipeline and reproduce the author's dev scores.
    assert "code from transformers_modules.hubheads_hyphen_demo" in stdout
    author_untuned = re.search(r"dev macro-F1 at 0.5: +(\d\.\d+)", stdout).group(1)
    author_tuned = re.search(r"dev macro-F1 with the tuned thresholds: (\d\.\d+)", stdout).group(1)
    assert re.findall(r"dev macro-F1 (\d\.\d+)", stdout)[:2] == [author_untuned, author_tuned]
    assert re.search(r"the thresholds change \d+ of 300 decisions", stdout)
    assert re.search(r"-> (question|complaint|praise|request) \d\.\d\d", stdout)
    assert re.search(r"rb\(posts, bio=bios, lang=langs\) +dev macro-F1 \d\.\d+", stdout)
    assert re.search(r"\| bio: .* -> (not_reclaimed|reclaimed) \d\.\d\d", stdout)
    assert re.search(r"-> trust (reliable|unreliable) \d\.\d\d, type (news|opinion|advert|question) \d\.\d\d", stdout)


def test_demo_refuses_to_overwrite_without_force(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"

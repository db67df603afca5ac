"""Errors as one typed family: the CLI prints one `error:` line for each, with its exit code."""

from __future__ import annotations

import huggingface_hub
import pytest
import tiny
from huggingface_hub import constants
from packaging.version import Version

from hubheads import export_model
from hubheads.cli import main
from hubheads.errors import HubheadsError, HubUnreachableError, is_network_failure, reaching_the_hub
from hubheads.push import MIN_HUB_FOR_PUSH


@pytest.mark.skipif(
    Version(huggingface_hub.__version__) < Version(MIN_HUB_FOR_PUSH),
    reason=f"push needs huggingface_hub>={MIN_HUB_FOR_PUSH} (tests/test_floors.py covers the older ones)",
)
def test_push_with_the_hub_unreachable_is_one_line_saying_what_to_check(tmp_path, monkeypatch, capsys):
    export_model(tiny.build_model(), tmp_path / "repo", tokenizer=tiny.build_tokenizer(), threshold=0.6)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda seconds: None)  # its retries, at once
    capsys.readouterr()
    code = main(["push", str(tmp_path / "repo"), "--repo-id", "org/tiny", "--no-smoke"])
    err = capsys.readouterr().err
    assert code == HubUnreachableError.exit_code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("hubheads push: error: could not reach the Hugging Face Hub (http://127.0.0.1:9)")
    assert "HTTPS_PROXY" in lines[0] and "push to org/tiny" in lines[0]


def test_only_network_failures_become_hub_unreachable_errors():
    # By class name, as huggingface_hub's HTTP client changes between releases (requests, httpx, httpx2).
    connect_error = type("ConnectError", (Exception,), {})
    timeout = type("ConnectTimeout", (Exception,), {})
    offline = type("OfflineModeIsEnabled", (ConnectionError,), {})  # huggingface_hub's, when HF_HUB_OFFLINE=1
    assert is_network_failure(connect_error("refused"))
    try:
        raise RuntimeError("wrapped") from timeout("slow")
    except RuntimeError as error:
        assert is_network_failure(error)
    assert not is_network_failure(offline("offline"))  # a ConnectionError the user asked for
    assert not is_network_failure(ValueError("bad input"))
    with pytest.raises(HubUnreachableError, match="to list files: ConnectError: refused") as info:
        with reaching_the_hub("list files"):
            raise connect_error("refused")
    assert isinstance(info.value, HubheadsError) and isinstance(info.value, ConnectionError)
    with pytest.raises(LookupError):  # an answer from the Hub (a missing repo, say) passes through
        with reaching_the_hub("list files"):
            raise LookupError("no such repo")


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("thresholds_by_lang", {1: 0.7}, "`thresholds_by_lang` keys must be non-empty strings, got 1"),
        ("best_threshold_global", float("nan"), "`best_threshold_global` must be a number between 0 and 1"),
        ("label_thresholds", {"LABEL_0": "high"}, r"`label_thresholds\['LABEL_0'\]` must be a number"),
    ],
)
def test_export_of_an_in_memory_model_refuses_a_threshold_the_pipeline_refuses(tmp_path, key, value, match):
    from hubheads import HubheadsTextClassificationPipeline

    model, tokenizer = tiny.build_model(), tiny.build_tokenizer()
    setattr(model.config, key, value)
    with pytest.raises(ValueError, match=match):
        HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match=match):  # wrote {"1": 0.7} without a word before
        export_model(model, tmp_path / "repo", tokenizer=tokenizer)
    assert not (tmp_path / "repo").exists()

"""How `verify --transformers` judges one release's runs against the author's (`release_check.compare`), and names
a failure by its known cause: fast, on outputs as the consumer script returns them."""

from hubheads.release_check import ReleaseRow, compare, known_cause


def _run(results, **extra):
    return {"transformers_version": "9.9.9", "results": [results], **extra}


AUTHOR = _run([{"label": "trusted", "score": 0.9, "tasks": {"type": {"label": "news", "score": 0.6}}}])


def test_equal_runs_pass():
    row = ReleaseRow("9.9.9")
    compare(AUTHOR, AUTHOR, AUTHOR, row)
    assert row.ok and row.cause is None


def test_another_head_decision_fails_even_with_equal_scores():
    other = _run([{"label": "trusted", "score": 0.9, "tasks": {"type": {"label": "opinion", "score": 0.6}}}])
    row = ReleaseRow("9.9.9")
    compare(AUTHOR, other, other, row)
    assert row.loads and row.finite and row.stable and not row.matches and "differ from the author's" in row.cause


def test_scores_beyond_the_tolerance_fail_and_two_loads_that_disagree_are_unstable():
    moved = _run([{"label": "trusted", "score": 0.9002, "tasks": {"type": {"label": "news", "score": 0.6}}}])
    row = ReleaseRow("9.9.9")
    compare(AUTHOR, moved, moved, row)
    assert row.stable and not row.matches
    row = ReleaseRow("9.9.9")
    compare(AUTHOR, AUTHOR, moved, row)
    assert not row.stable and "two loads gave different scores" in row.cause


def test_failures_name_their_known_cause():
    buffers = {"error": "IndexError: index 9223372036854775807 is out of bounds", "suspect_buffers": ["x.ids (X)"]}
    row = ReleaseRow("5.0.0")
    compare(AUTHOR, {"transformers_version": "5.0.0", **buffers}, {"transformers_version": "5.0.0", **buffers}, row)
    assert not row.loads and "non-persistent buffers" in row.cause and "_init_weights" in row.cause
    nan = _run([{"label": "trusted", "score": float("nan")}])
    row = ReleaseRow("5.0.0")
    compare(AUTHOR, nan, nan, row)
    assert not row.finite and "non-persistent buffers" in row.cause
    assert "no `post_init()`" in known_cause("AttributeError: 'M' object has no attribute 'all_tied_weights_keys'")
    assert "encode_plus" in known_cause("AttributeError: 'PreTrainedTokenizerFast' has no attribute 'encode_plus'")
    assert known_cause("KeyError: 'something else'") is None

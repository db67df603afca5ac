"""`hubheads --help`, `hubheads CMD --help` and argument errors answer before torch loads: the console script
(`hubheads_cli`) parses with the standard library alone. Checked by the modules a fresh process imports, not by
time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hubheads.cli import HANDLERS
from hubheads.modeling.configuration_backbone import NEWER_ENCODERS
from hubheads.modeling.configuration_hubheads import MEASURED_PRECISIONS, THRESHOLD_MODES
from hubheads_cli import build_parser, defaults

#: Runs `hubheads ARGV` in this fresh process and prints its exit status, its output, and the top-level modules it
#: imported that are not the standard library's.
PROBE = """
import contextlib, io, json, sys
before = set(sys.modules)
output = io.StringIO()
with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
    try:
        from hubheads_cli import main
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
loaded = {name.split(".")[0] for name in set(sys.modules) - before}
print(json.dumps({"code": code, "output": output.getvalue(), "loaded": sorted(loaded - set(sys.stdlib_module_names))}))
"""


def _start(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "argv, code, says",
    [
        (["--help"], 0, "usage: hubheads"),
        (["--version"], 0, "hubheads "),
        (["tune", "--help"], 0, "--min-lang-examples"),
        (["score", "--help"], 0, "bfloat16"),
        (["score", "m", "--data", "d.jsonl", "--out", "o.jsonl", "--precision", "fp8"], 2, "invalid choice: 'fp8'"),
        (["verify", "m", "--transformers", "4.57"], 2, "takes releases like 4.57.6"),
        (["export"], 2, "the following arguments are required: SRC, OUT"),
        (["no-such-command"], 2, "invalid choice: 'no-such-command'"),
    ],
)
def test_help_and_argument_errors_import_nothing_beyond_the_standard_library(argv, code, says):
    started = _start(*argv)
    assert started["code"] == code and says in started["output"], started
    assert started["loaded"] == ["hubheads_cli"], started["loaded"]


def test_a_command_that_runs_loads_the_package_and_torch(tmp_path):
    # The probe sees heavy imports when they happen: a command that runs registers the architectures (torch).
    started = _start("card", str(tmp_path / "missing"))
    assert started["code"] == 2 and "hubheads card: error:" in started["output"], started
    assert {"hubheads", "torch", "transformers"} <= set(started["loaded"])


def test_every_command_parsed_has_one_handler():
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == set(HANDLERS)


def test_the_copies_of_the_shipped_files_values_match_them():
    # modeling/ ships into Hub repos and imports nothing of hubheads, so the command line keeps a copy of these.
    assert defaults.THRESHOLD_MODES == THRESHOLD_MODES and defaults.PRECISIONS == MEASURED_PRECISIONS
    assert defaults.NATIVE_GTE_TRANSFORMERS == NEWER_ENCODERS["gte"]


def test_the_console_script_is_the_light_entry_point():
    script = Path(sys.executable).with_name("hubheads")
    if not script.exists():
        pytest.skip("no hubheads console script beside this interpreter")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: hubheads" in done.stdout
    assert "from hubheads_cli import main" in script.read_text(encoding="utf-8")

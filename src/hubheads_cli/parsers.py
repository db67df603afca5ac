"""The `hubheads` parser: one `_<command>_parser` per command, in the order `hubheads --help` lists them.

Standard library only (their defaults and choices come from `hubheads_cli.defaults`): `--help`, `CMD --help` and a bad
argument answer before torch or transformers load. Each command's handler is `hubheads.cli`'s function of the same
name without `_parser`.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from hubheads_cli.defaults import (
    BOOTSTRAP_RESAMPLES,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_RELEASES,
    DEMO_THREADS,
    FOLDS,
    METRICS,
    MIN_LANG_EXAMPLES,
    NATIVE_GTE_TRANSFORMERS,
    ON_ERROR,
    PRECISIONS,
    SEED,
    THRESHOLD_MODES,
    TRAIN_STEPS,
    VERSION,
)


def _name_and_threshold(option: str):
    def parse(text: str) -> tuple[str, float]:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"{option} expects NAME=VALUE (e.g. it=0.7), got {text!r}")
        try:
            return name, float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} expects a number after '=', got {value!r}") from None

    return parse


def _export_parser(commands: Any) -> None:
    """`hubheads export`: its arguments (`hubheads.cli._export` runs it)."""
    export = commands.add_parser(
        "export",
        help="write a Hub-ready repo folder from a checkpoint folder",
        description=(
            "Write a Hub-ready folder from a checkpoint saved with save_pretrained: safetensors weights, tokenizer, "
            "config.json with the thresholds (and the hubheads pipeline when the repo needs it), postprocessing.json. "
            "Thresholds already in SRC's config.json or postprocessing.json are kept unless overridden."
        ),
    )
    export.add_argument(
        "src", metavar="SRC", help="checkpoint folder (config.json + *.safetensors), or a Hub repo id (org/name)"
    )
    export.add_argument("out", metavar="OUT", help="folder to write; must be new or empty unless --force")
    export.add_argument("--threshold", type=float, help="tuned global threshold (best_threshold_global)")
    export.add_argument("--default-threshold", type=float, help="untuned threshold (default_threshold)")
    export.add_argument(
        "--lang-threshold",
        action="append",
        default=[],
        type=_name_and_threshold("--lang-threshold"),
        metavar="LANG=T",
        help="threshold for one language, e.g. it=0.7 (repeatable)",
    )
    export.add_argument(
        "--label-threshold",
        action="append",
        default=[],
        type=_name_and_threshold("--label-threshold"),
        metavar="LABEL=T",
        help="threshold for one label of a multi-label model, e.g. sarcasm=0.4 (repeatable)",
    )
    export.add_argument(
        "--multi-label", action="store_true", help="mark the model multi-label: return every label over its threshold"
    )
    export.add_argument("--tokenizer", metavar="DIR", help="take the tokenizer from DIR (when SRC has none)")
    export.add_argument("--revision", help="branch, tag, commit or refs/pr/N when SRC is a Hub repo id")
    new_format = export.add_mutually_exclusive_group()
    new_format.add_argument(
        "--native",
        action="store_true",
        help="convert a gte-multilingual-base ('new' format) checkpoint to transformers' native gte "
        f"(transformers >= {NATIVE_GTE_TRANSFORMERS} only) instead of hubheads' own implementation (the default, "
        "which runs on every transformers release)",
    )
    new_format.add_argument(
        "--keep-remote-code",
        action="store_true",
        help="keep a 'new'-format checkpoint's auto_map into its code repo (Alibaba-NLP/new-impl) instead of "
        "hubheads' own implementation; that code runs on transformers 4 only, and needs --trust-remote-code",
    )
    _add_trust_option(export)
    export.add_argument("--force", action="store_true", help="replace a non-empty OUT (atomically)")


def _tune_parser(commands: Any) -> None:
    """`hubheads tune`: its arguments (`hubheads.cli._tune` runs it)."""
    tune = commands.add_parser(
        "tune",
        help="find the exact best thresholds on a dev set and write them into the repo",
        description=(
            "Run MODEL_DIR over a labelled dev set and find the exact best decision thresholds over every cut point: "
            "global, per language (languages with fewer than --min-lang-examples rows of both classes use the global "
            "one), per label for multi-label models, on the primary head of multi-task models. Writes them into "
            "MODEL_DIR/config.json and postprocessing.json, and the metrics (at the default threshold, the best "
            "global one, the per-language ones; per-language table; classification reports), each with a bootstrap "
            "95%% interval, a cross-validated estimate of the tuned rule, and the metric at every threshold (for the "
            "card's figures) into reports.json. Ties go to 0.5 when it is optimal, otherwise to the middle of the "
            "optimal interval nearest to 0.5."
        ),
    )
    tune.add_argument("model_dir", metavar="MODEL_DIR", help="exported repo folder (or checkpoint with tokenizer)")
    tune.add_argument("--data", required=True, help="labelled dev set: .jsonl, .json, .csv, .tsv or .parquet")
    _add_data_options(tune)
    tune.add_argument(
        "--label-column",
        default="label",
        help="column of the gold labels: class id or name; for multi-label, names as a list or 'a;b' "
        "(default: %(default)s; a multi-label set may instead have one 0/1 column per label)",
    )
    tune.add_argument(
        "--metric",
        default="macro_f1",
        choices=METRICS,
        help="what the thresholds maximise (default: %(default)s)",
    )
    tune.add_argument(
        "--min-lang-examples",
        type=int,
        default=MIN_LANG_EXAMPLES,
        help="dev rows a language needs for its own threshold (default: %(default)s)",
    )
    tune.add_argument(
        "--bootstrap",
        type=int,
        default=BOOTSTRAP_RESAMPLES,
        metavar="N",
        help="bootstrap resamples behind each metric's 95%% interval; 0 for none (default: %(default)s)",
    )
    tune.add_argument(
        "--folds",
        type=int,
        default=FOLDS,
        metavar="K",
        help="cross-validation folds for the out-of-sample estimate of the tuned rule; 0 to skip "
        "(default: %(default)s)",
    )
    tune.add_argument("--seed", type=int, default=SEED, help="seed of the resamples and folds (default: %(default)s)")
    tune.add_argument(
        "--precision",
        default="float32",
        choices=PRECISIONS,
        help="tune the thresholds on the model's scores at this precision, for a model served at it; config.json "
        "records it, and the pipeline warns once when run at another (default: %(default)s)",
    )
    tune.add_argument(
        "--no-precisions",
        action="store_true",
        help="skip running the tuned decisions at bfloat16 and dynamic int8 against float32 (reports.json "
        "`precisions`, shown by the card)",
    )
    _add_run_options(tune)
    _add_trust_option(tune)
    tune.add_argument("--force", action="store_true", help="replace thresholds and reports.json tuned before")


def _card_parser(commands: Any) -> None:
    """`hubheads card`: its arguments (`hubheads.cli._card` runs it)."""
    card = commands.add_parser(
        "card",
        help="write the model card (README.md) from config.json and reports.json",
        description=(
            "Render MODEL_DIR/README.md from the hubheads card template with huggingface_hub's ModelCard: front "
            "matter with model-index dev results, pipeline_tag, library_name, languages and base model; sections for "
            "usage (remote code with a pinned revision, and with hubheads installed), thresholds, dev results, "
            "per-language metrics, classification reports, hyperparameters and limitations."
        ),
    )
    card.add_argument("model_dir", metavar="MODEL_DIR", help="exported (and tuned) repo folder")
    card.add_argument("--repo-id", help="org/name on the Hub, for the usage code")
    card.add_argument(
        "--revision", default="main", help="the revision the usage code pins, e.g. a commit id (default: %(default)s)"
    )
    card.add_argument("--hyperparams", metavar="FILE", help="training hyperparameters, a JSON or YAML mapping")
    card.add_argument("--license", help="Hub license id, e.g. apache-2.0")
    card.add_argument(
        "--language", action="append", default=[], help="language code (repeatable; default: from the dev set)"
    )
    card.add_argument(
        "--base-model", help="Hub id of the model fine-tuned (default: from config.json, if it names one)"
    )
    card.add_argument(
        "--dataset-name", default="dev set", help="the dev set's name in model-index (default: %(default)s)"
    )
    card.add_argument("--dataset-id", help="the dev set's Hub dataset id, if it has one")
    _add_trust_option(card)
    card.add_argument(
        "--force",
        action="store_true",
        help="replace an existing README.md wholesale (without it, the author's text is kept and only the hubheads "
        "section and the front matter are updated)",
    )


def _add_transformers_option(parser: Any, help: str) -> None:
    """`--transformers [R1,R2,...]` (bare: the default releases), as `verify` and `push` take it."""
    parser.add_argument(
        "--transformers", nargs="?", const=",".join(DEFAULT_RELEASES), type=_releases, metavar="R1,R2,...", help=help
    )


def _verify_parser(commands: Any) -> None:
    """`hubheads verify`: its arguments (`hubheads.cli._verify` runs it)."""
    verify = commands.add_parser(
        "verify",
        help="check a repo folder or Hub repo before and after pushing",
        description=(
            "Check an exported repo: thresholds valid; custom_pipelines / auto_map name files and classes in the "
            "repo; every .py file byte-identical to a released hubheads file (other code fails unless "
            "--allow-unknown-code, and is scanned for exec, eval, dynamic imports and names, pickle, subprocess, "
            "native and network code); no symlink out of the repo; safetensors weights only; tokenizer and model "
            "card present; and, when all that passed, a smoke run of the stock pipeline (trust_remote_code=True) in a "
            "fresh, offline process without credentials. A review aid, not a sandbox. Exits 1 when a check fails."
        ),
    )
    verify.add_argument("target", metavar="DIR|org/name", help="a repo folder, or a Hub repo id")
    verify.add_argument("--revision", help="branch, tag or commit of a Hub repo id (default: main)")
    verify.add_argument("--json", action="store_true", help="print the findings as JSON")
    verify.add_argument("--no-smoke", action="store_true", help="skip the smoke run (static checks only)")
    verify.add_argument("--python", help="interpreter of the smoke run, e.g. one with another transformers version")
    _add_trust_option(verify)
    verify.add_argument("--allow-unknown-code", action="store_true", help=UNKNOWN_CODE_HELP)
    _add_transformers_option(
        verify,
        "also run the repo as a consumer on each of these transformers releases ('latest' for the newest; bare: "
        f"{','.join(DEFAULT_RELEASES)}), in cached environments without hubheads (built with uv where available), "
        "twice per release, against your own outputs; a folder records the result for its card",
    )


def _releases(value: str) -> list[str]:
    """`--transformers R1,R2,...` as a list of releases."""
    releases = [part.strip() for part in value.split(",") if part.strip()]
    for release in releases:
        if release != "latest" and not re.fullmatch(r"\d+\.\d+\.\d+", release):
            raise argparse.ArgumentTypeError(
                f"takes releases like 4.57.6 or 'latest', separated by commas; got {release!r}"
            )
    return releases


def _push_parser(commands: Any) -> None:
    """`hubheads push`: its arguments (`hubheads.cli._push` runs it)."""
    push = commands.add_parser(
        "push",
        help="verify a repo folder and upload it to the Hub in one commit",
        description=(
            "Run `hubheads verify` on DIR, then create the Hub repo if needed and upload the folder in one commit. "
            "Prints the commit id and the consumer's pipeline line pinned to it. Refuses a folder that verify "
            "rejects unless --force. The token comes from HF_TOKEN or `hf auth login`."
        ),
    )
    push.add_argument("folder", metavar="DIR", help="exported repo folder")
    push.add_argument("--repo-id", required=True, help="the Hub repo, org/name")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to main")
    push.add_argument("--branch", help="commit to this branch (created if missing)")
    push.add_argument("--message", help="commit message")
    push.add_argument("--no-smoke", action="store_true", help="verify without the smoke run")
    _add_transformers_option(
        push, "run `verify --transformers` first: a release that fails stops the push unless --force"
    )
    push.add_argument(
        "--delete-legacy",
        action="store_true",
        help="delete the repo's pickles and legacy weights (pytorch_model.bin, tf_model.h5, ...) in the same commit",
    )
    push.add_argument(
        "--allow-breaking-main",
        action="store_true",
        help="add remote code to the main branch of a repo that loads without it today (breaks old calls)",
    )
    _add_trust_option(push)
    push.add_argument("--allow-unknown-code", action="store_true", help=UNKNOWN_CODE_HELP)
    push.add_argument("--force", action="store_true", help="push even if verify reports failures")


def _score_parser(commands: Any) -> None:
    """`hubheads score`: its arguments (`hubheads.cli._score` runs it)."""
    score = commands.add_parser(
        "score",
        help="write the decisions of a repo for every row of a file (jsonl, json, csv, tsv, parquet)",
        description=(
            "Run MODEL's pipeline, with the decisions its author tuned, over every row of --data (.jsonl, .json, "
            ".csv, .tsv or .parquet) and write one row per input row, in order, to --out (.jsonl or .parquet): the "
            "input columns (or --keep's) and the decision columns: label, score, threshold; labels and scores for a "
            "multi-label model; <task>_label and <task>_score for each head of a multi-task model. Reads and writes "
            "in chunks "
            "(bounded memory). Each finished chunk is kept in a hidden folder beside --out, which appears only when "
            "the run is done: after a crash, --resume continues from the last finished chunk."
        ),
    )
    score.add_argument("model", metavar="MODEL", help="a repo folder, or a Hub repo id (org/name)")
    score.add_argument("--data", required=True, help="rows to score: .jsonl, .json, .csv, .tsv or .parquet")
    score.add_argument("--out", required=True, help="decisions file to write: .jsonl or .parquet")
    _add_data_options(score)
    score.add_argument("--text-pair-column", help="column of the second texts, for text-pair models")
    score.add_argument(
        "--threshold-mode",
        choices=THRESHOLD_MODES,
        help="which tuned threshold decides, as the pipeline's threshold_mode (default: auto)",
    )
    score.add_argument("--threshold", type=float, help="one threshold for every decision, overriding the tuned ones")
    score.add_argument(
        "--keep",
        metavar="COL,COL",
        help="input columns to copy into the output, comma-separated (default: all; --keep '' for none)",
    )
    score.add_argument("--prefix", default="", help="prefix of the decision columns' names, e.g. pred_")
    score.add_argument(
        "--precision",
        default="float32",
        choices=PRECISIONS,
        help="run the model at bfloat16 (fast on CPUs with AVX512-BF16/AMX) or dynamic int8; the card's 'Faster "
        "precisions' table says how many dev decisions each changes (default: %(default)s)",
    )
    score.add_argument(
        "--on-error",
        choices=ON_ERROR,
        default="stop",
        help="a row with a missing or non-string text: stop with its row number, or skip it into "
        "OUT's .errors.jsonl with the reason (default: %(default)s)",
    )
    score.add_argument("--resume", action="store_true", help="continue an interrupted run from its last chunk")
    _add_run_options(score)
    score.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help="rows read, length-sorted and written at a time (default: %(default)s)",
    )
    score.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    score.add_argument("--revision", help="branch, tag or commit when MODEL is a Hub repo id")
    score.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_trust_option(score)
    score.add_argument("--force", action="store_true", help="replace an existing --out; start over a partial run")


def _import_weights_parser(commands: Any) -> None:
    """`hubheads import-weights`: its arguments (`hubheads.cli._import_weights` runs it)."""
    imported = commands.add_parser(
        "import-weights",
        help="map the weights of an author's own PyTorch class onto a transformers or hubheads architecture",
        description=(
            "Load a state dict saved by an author's own class (config.json without model_type; keys such as "
            "roberta.*, trust_head.*), rename its keys with --map OLD=NEW prefixes, and load it into the "
            "architecture of --config (a config.json with model_type, e.g. residual_type_fusion). Every weight of the "
            "model must be filled and every key of the file used (or --drop'ped): a partial load is refused, listing "
            "the missing and unexpected keys. Writes a save_pretrained folder (safetensors) for `hubheads export`."
        ),
    )
    imported.add_argument(
        "weights", metavar="WEIGHTS", help="the state dict: *.safetensors, or *.bin with --allow-pickle"
    )
    imported.add_argument("out", metavar="OUT", help="folder to write; must be new or empty unless --force")
    imported.add_argument("--config", required=True, help="config.json of the target architecture (with model_type)")
    imported.add_argument(
        "--map",
        action="append",
        default=[],
        type=_key_prefix,
        metavar="OLD=NEW",
        help="rename keys starting with OLD to start with NEW, e.g. roberta.=encoder. (repeatable; first match wins)",
    )
    imported.add_argument(
        "--drop", action="append", default=[], metavar="PREFIX", help="leave out keys starting with PREFIX"
    )
    imported.add_argument("--tokenizer", metavar="DIR", help="copy the tokenizer from DIR into OUT")
    imported.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read a pickle (*.bin) state dict with torch.load(weights_only=True); only for files you trust",
    )
    imported.add_argument("--force", action="store_true", help="replace a non-empty OUT")


def _demo_parser(commands: Any) -> None:
    """`hubheads demo`: its arguments (`hubheads.cli._demo` runs it)."""
    demo = commands.add_parser(
        "demo",
        help="fine-tune, threshold, export and consume real MiniLM classifiers offline",
        description=(
            "Fine-tune MiniLM-L6 into four classifiers on the bundled example posts, tune their thresholds on the dev "
            "splits, export, card and verify the repos, and run them in a fresh process through the offline Hub "
            "cache with the stock pipeline, counting the dev decisions the thresholds fixed and broke; then score a "
            "file and bring an existing plain repo through export, tune and card. Fixed seeds, a fixed number of "
            f"steps and {DEMO_THREADS} torch thread(s) for training: two runs print the same figures."
        ),
    )
    demo.add_argument(
        "--out", default="hubheads-demo", help="folder for the repos and the cache (default: %(default)s)"
    )
    demo.add_argument("--force", action="store_true", help="replace an existing demo folder")
    demo.add_argument(
        "--train-steps",
        type=int,
        metavar="N",
        help="optimizer steps of 16 rows for every model (each phase of the multi-task one), instead of each "
        f"model's own: {', '.join(f'{name} {steps}' for name, steps in TRAIN_STEPS.items())}",
    )


def _key_prefix(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old:
        raise argparse.ArgumentTypeError(f"--map expects OLD=NEW key prefixes (e.g. roberta.=encoder.), got {text!r}")
    return old, new


def _add_trust_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="accept a model whose config.json's auto_map runs code from another repo (read that code first); "
        "without it such a model is refused at once, as in transformers, never with a prompt",
    )


def _add_data_options(command: argparse.ArgumentParser) -> None:
    """The options that read `--data` (tune, score): its text encoding and the columns of the pipeline's inputs."""
    command.add_argument(
        "--encoding", default="utf-8", help="text encoding of --data, e.g. latin-1 or cp1252 (default: %(default)s)"
    )
    command.add_argument("--text-column", default="text", help="column of the texts (default: %(default)s)")
    command.add_argument("--lang-column", help="column of the language codes (default: 'lang' if present)")
    command.add_argument(
        "--bio-column", help="column of the author bios, for a model that reads them (default: 'bio' if present)"
    )


def _add_run_options(command: argparse.ArgumentParser) -> None:
    """How the pipeline runs over `--data` (tune, score)."""
    command.add_argument("--batch-size", type=int, default=32, help="pipeline batch size (default: %(default)s)")
    command.add_argument("--device", help="torch device, e.g. cuda:0 (default: CPU)")


#: The help of `--allow-unknown-code` (verify, push).
UNKNOWN_CODE_HELP = (
    "accept .py files that are not byte-identical to a released hubheads file, after reading them (verify fails on "
    "them otherwise, and its smoke run never executes them)"
)


#: The sub-commands, in the order `hubheads --help` lists them.
COMMAND_PARSERS = (
    _export_parser,
    _tune_parser,
    _card_parser,
    _verify_parser,
    _push_parser,
    _score_parser,
    _import_weights_parser,
    _demo_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The `hubheads` parser; `args.command` names the command that was given."""
    parser = argparse.ArgumentParser(
        prog="hubheads",
        description="Ship text classifiers to the Hugging Face Hub with the decisions their authors tuned.",
    )
    parser.add_argument("--version", action="version", version=f"hubheads {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMAND_PARSERS:
        add_command(commands)
    return parser

"""The handlers of the `hubheads` commands: `export`, `tune`, `card`, `verify`, `push`, `score`, `import-weights`,
`demo`. Their arguments are parsed by `hubheads_cli` (the console script, which answers `--help` without importing
torch); `run` calls the handler of `args.command`, and each handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hubheads.errors import HubheadsError


def _export(args: argparse.Namespace) -> int:
    from hubheads.export import export_model

    report = export_model(
        args.src,
        args.out,
        tokenizer=args.tokenizer,
        threshold=args.threshold,
        default_threshold=args.default_threshold,
        lang_thresholds=dict(args.lang_threshold) or None,
        label_thresholds=dict(args.label_threshold) or None,
        multi_label=True if args.multi_label else None,
        force=args.force,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        native=args.native,
        keep_remote_code=args.keep_remote_code,
    )
    print(f"Exported {args.src} -> {report.out_dir}")
    if report.converted == "new_gte":
        print(
            '  model code: hubheads\' own implementation of the "new" architecture (model type new_gte, '
            "modeling_new_gte.py in the repo), the same weights; no code of the checkpoint's code repo runs, on any "
            "transformers release"
        )
    elif report.converted == "gte":
        print("  model code: transformers' native gte (consumers need transformers >= 5.18.0)")
    print(f"  files: {', '.join(report.files)}")
    if report.skipped:
        print(
            f"  left out: {', '.join(report.skipped)} (pickles, archives, folders and hidden files are not exported)"
        )
    print(f"  thresholds: {report.thresholds or 'none (stock decisions)'}")
    if report.pipeline_declared:
        print("  config.json declares the hubheads pipeline: consumers call")
        print('    pipeline("text-classification", model="<org>/<name>", trust_remote_code=True)')
        if report.source_was_plain:
            print(
                "  note: SRC loads without remote code today; pushing OUT onto its main would break consumers who "
                "call it without trust_remote_code=True. Push with --branch NAME or --create-pr (consumers opt in "
                "with revision=), or to a new repo id."
            )
    else:
        print("  nothing to decide beyond argmax: the repo stays a plain transformers repo (no remote code)")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from hubheads.tune import summary, tune_model

    result = tune_model(
        args.model_dir,
        args.data,
        text_column=args.text_column,
        label_column=args.label_column,
        lang_column=args.lang_column,
        bio_column=args.bio_column,
        metric=args.metric,
        min_lang_examples=args.min_lang_examples,
        batch_size=args.batch_size,
        device=args.device,
        force=args.force,
        trust_remote_code=args.trust_remote_code,
        encoding=args.encoding,
        bootstrap=args.bootstrap,
        folds=args.folds,
        seed=args.seed,
        precisions=not args.no_precisions,
        precision=args.precision,
    )
    print(f"Tuned {args.model_dir} on {result.reports['data']['rows']} rows of {args.data} ({args.metric})")
    print("\n".join(summary(result)))
    print(f"  wrote config.json, postprocessing.json and reports.json in {args.model_dir}")
    return 0


def _card(args: argparse.Namespace) -> int:
    from hubheads.card import CardOptions, read_hyperparameters, write_card

    options = CardOptions(
        repo_id=args.repo_id,
        revision=args.revision,
        license=args.license,
        language=args.language or None,
        base_model=args.base_model,
        dataset_name=args.dataset_name,
        dataset_id=args.dataset_id,
        hyperparameters=read_hyperparameters(args.hyperparams) if args.hyperparams else {},
    )
    path = write_card(args.model_dir, options, force=args.force, trust_remote_code=args.trust_remote_code)
    print(f"Wrote the model card {path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    import json

    from hubheads.verify import verify_repo

    report = verify_repo(
        args.target,
        smoke=not args.no_smoke,
        python=args.python,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        allow_unknown_code=args.allow_unknown_code,
        transformers=args.transformers,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


def _push(args: argparse.Namespace) -> int:
    from hubheads.push import push_folder

    result = push_folder(
        args.folder,
        args.repo_id,
        private=args.private,
        create_pr=args.create_pr,
        branch=args.branch,
        message=args.message,
        force=args.force,
        smoke=not args.no_smoke,
        delete_legacy=args.delete_legacy,
        allow_breaking_main=args.allow_breaking_main,
        trust_remote_code=args.trust_remote_code,
        allow_unknown_code=args.allow_unknown_code,
        transformers=args.transformers,
    )
    if result.deleted:
        print(f"Deleted in the same commit: {', '.join(result.deleted)}")
    print(f"Pushed {args.folder} to {result.repo_id} ({result.revision}): commit {result.commit_oid}")
    if result.stale:
        print(
            f"  left in place, built from the previous weights (they no longer match): {', '.join(result.stale)}; "
            "regenerate or delete them"
        )
    print(f"  {result.pr_url or result.commit_url}")
    print("  consumers pin this commit:")
    print(f"    {result.usage}")
    print(f"  {_releases_line(Path(args.folder))}")
    return 0


def _releases_line(folder: Path) -> str:
    """What `verify --transformers` last found for these exact files, in one line."""
    from hubheads.release_check import read_result

    report = read_result(folder)
    if report is None:
        return "transformers releases: not checked for these files (hubheads verify DIR --transformers)"
    passed, failed = report.passed, [row.version for row in report.rows if not row.ok]
    return f"transformers releases (verify --transformers, {report.date}): runs on {', '.join(passed) or 'none'}" + (
        f"; fails on {', '.join(failed)}" if failed else ""
    )


def _score(args: argparse.Namespace) -> int:
    from hubheads.score import ScoreOptions, score_file

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    options = ScoreOptions(
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        lang_column=args.lang_column,
        bio_column=args.bio_column,
        threshold_mode=args.threshold_mode,
        threshold=args.threshold,
        keep=None if args.keep is None else tuple(name for name in args.keep.split(",") if name),
        prefix=args.prefix,
        precision=args.precision,
    )
    result = score_file(
        args.model,
        args.data,
        args.out,
        options=options,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        on_error=args.on_error,
        resume=args.resume,
        force=args.force,
        encoding=args.encoding,
        device=args.device,
        progress=not args.no_progress,
    )
    resumed = f", resumed after {result.resumed_at:,}" if result.resumed_at else ""
    print(f"Scored {args.data} -> {result.out}: {result.rows:,} rows{resumed}")
    print(f"  columns: {', '.join(result.columns)}")
    if result.errors:
        print(f"  skipped {result.skipped:,} bad rows, with the reason, in {result.errors}")
    return 0


def _import_weights(args: argparse.Namespace) -> int:
    from hubheads.importing import import_weights

    report = import_weights(
        args.weights,
        args.out,
        config=args.config,
        key_map=dict(args.map),
        drop=args.drop,
        tokenizer=args.tokenizer,
        allow_pickle=args.allow_pickle,
        force=args.force,
    )
    print(f"Imported {report.loaded} tensors from {args.weights} into {report.model_class} -> {args.out}")
    if report.dropped:
        print(f"  dropped as asked: {', '.join(report.dropped)}")
    print(f"  next: hubheads export {args.out} OUT")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from hubheads.demo import run_demo

    run_demo(args.out, force=args.force, train_steps=args.train_steps)
    return 0


#: Each command's handler, by the name `hubheads_cli.parsers` gives the command.
HANDLERS = {
    "export": _export,
    "tune": _tune,
    "card": _card,
    "verify": _verify,
    "push": _push,
    "score": _score,
    "import-weights": _import_weights,
    "demo": _demo,
}


def run(args: argparse.Namespace) -> int:
    """Run the command `args` (from `hubheads_cli.build_parser().parse_args`) holds; returns the exit status."""
    try:
        return HANDLERS[args.command](args)
    except HubheadsError as error:  # the typed family (hubheads.errors); anything else is a bug: its traceback
        print(f"hubheads {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code

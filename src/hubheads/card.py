"""`hubheads card MODEL_DIR`: the model card (README.md) of an exported repo.

The front matter is `huggingface_hub`'s `ModelCardData`, with the dev results of `reports.json` as `EvalResult`s so
the Hub shows them (`model-index`); the body is rendered from `hub_templates/modelcard_template.md` with
`ModelCard.from_template`. Everything the template shows is computed here as plain strings (tables, code), so the
template stays declarative.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hubheads.architectures import ARCHITECTURES
from hubheads.atomic import write_atomically
from hubheads.errors import InvalidInputError, SourceNotFoundError
from hubheads.figures import SCORES_FIGURE, THRESHOLD_FIGURE, draw_figures, figures_of
from hubheads.modeling.configuration_backbone import NEWER_ENCODERS
from hubheads.modeling.configuration_new_gte import NewGteConfig
from hubheads.offline_hub import check_repo_id
from hubheads.release_check import read_result
from hubheads.repo_files import HANDLER_FILE, copy_resource, label_names, needs_remote_code, read_json
from hubheads.reports import (
    METRIC_TYPES,
    RULE_NAMES,
    cross_validated_estimate,
    deployed_rule,
    metric_name,
    model_kind,
    read_reports,
    with_interval,
)
from hubheads.sources import NEW_FORMAT, check_trusted, code_pin, code_repos, pin_advice

TEMPLATE = "modelcard_template.md"
CARD_FILE = "README.md"
#: The hubheads section of a README: `hubheads card` rewrites what lies between these and keeps the rest.
SECTION_START, SECTION_END = "<!-- hubheads:start -->", "<!-- hubheads:end -->"


@dataclass
class CardOptions:
    """What the author tells `hubheads card`; everything else is read from the repo.

    Args:
        repo_id (`str`, *optional*): `org/name` on the Hub; defaults to `<org>/<folder name>` in the usage code.
        revision (`str`, *optional*, defaults to `"main"`): the revision the usage code pins.
        license (`str`, *optional*): a Hub license id, e.g. `apache-2.0`.
        language (`list[str]`, *optional*): language codes; defaults to those of the dev set and the config.
        base_model (`str`, *optional*): the Hub id fine-tuned; defaults to the config's, when it names one.
        dataset_name (`str`, *optional*, defaults to `"dev set"`): the name of the dev set in `model-index`.
        dataset_id (`str`, *optional*): its Hub id, if it has one (the `model-index` dataset type).
        hyperparameters (`dict`, *optional*): training hyperparameters to list.
    """

    repo_id: str | None = None
    revision: str = "main"
    license: str | None = None
    language: list[str] | None = None
    base_model: str | None = None
    dataset_name: str = "dev set"
    dataset_id: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.repo_id is not None:
            check_repo_id(self.repo_id, "--repo-id")
        if not self.revision or not isinstance(self.revision, str):
            raise InvalidInputError(f"--revision must be a branch, tag or commit id, got {self.revision!r}.")
        if not isinstance(self.hyperparameters, Mapping):
            raise InvalidInputError(
                f"hyperparameters must be a mapping of names to values, got {self.hyperparameters!r:.60}."
            )


def read_hyperparameters(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON or YAML file of training hyperparameters (one mapping)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"--hyperparams {path} does not exist.")
    text = path.read_text(encoding="utf-8")
    try:
        values = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise InvalidInputError(
            f"--hyperparams {path} is not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {error}"
        )
    if not isinstance(values, dict):
        raise InvalidInputError(
            f"--hyperparams {path} must hold one mapping of names to values, e.g. learning_rate: 2e-5."
        )
    return values


def _number(value: Any) -> str:
    """Metrics and thresholds to 4 decimals; other values as they are."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _ordered(rules: Mapping[str, Any]) -> list[str]:
    """Rule names from the untuned decisions to the most specific ones."""
    return [rule for rule in RULE_NAMES if rule in rules]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_number(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


REPORT_COLUMNS = ("precision", "recall", "f1-score", "support")


def _report_table(report: Mapping[str, Any]) -> str:
    """A scikit-learn `classification_report(output_dict=True)` as a markdown table."""
    rows = []
    for name, values in report.items():
        if isinstance(values, Mapping):
            cells = [values[k] for k in REPORT_COLUMNS[:3]] + [int(values["support"])]
            rows.append([f"**{name}**" if name.endswith(" avg") else name] + cells)
        else:  # "accuracy": one number
            rows.append([f"**{name}**", "", "", values, ""])
    return _table(["", "precision", "recall", "f1-score", "support"], rows)


def _base_model(config: Mapping[str, Any]) -> str | None:
    """The Hub id the model was fine-tuned from, when the config names one (not a local path)."""
    for candidate in (config.get("backbone_config") or {}).get("_name_or_path"), config.get("_name_or_path"):
        if isinstance(candidate, str) and not Path(candidate).exists():
            try:
                check_repo_id(candidate)
            except ValueError:
                continue
            return candidate
    return None


@dataclass
class CardContext:
    """Everything a card section reads: the repo's config.json and reports.json, and the author's options.

    Each section of the card is a function `section(context) -> str` in `SECTIONS` (an empty string leaves the
    section out); the template places them. A new section is one function and one line of the template.
    """

    folder: Path
    options: CardOptions
    config: dict[str, Any]
    reports: dict[str, Any]

    @classmethod
    def read(cls, model_dir: str | os.PathLike, options: CardOptions | None = None) -> CardContext:
        folder = Path(model_dir)
        if not (folder / "config.json").is_file():
            raise SourceNotFoundError(f"MODEL_DIR {folder} has no config.json; pass an exported repo folder.")
        return cls(folder, options or CardOptions(), read_json(folder / "config.json"), read_reports(folder))

    @property
    def names(self) -> list[str]:
        return label_names(self.config)

    @property
    def kind(self) -> str:
        return self.reports.get("kind") or model_kind(self.config)

    @property
    def remote(self) -> bool:
        return needs_remote_code(self.config)

    @property
    def repo_id(self) -> str:
        return self.options.repo_id or f"<org>/{self.folder.resolve().name}"

    @property
    def deployed(self) -> str | None:
        """The rule whose decisions the repo makes, when it was tuned."""
        return deployed_rule(self.reports) if self.reports else None

    @property
    def figures(self) -> list[str]:
        """The figures `write_card` draws into the repo from reports.json."""
        return figures_of(self.reports)

    def card_data(self) -> Any:
        """The front matter: `ModelCardData` with the dev results as `model-index` `EvalResult`s."""
        from huggingface_hub import ModelCardData

        reports, config = self.reports, self.config
        languages = self.options.language or sorted(
            set(reports.get("by_lang") or {})
            | set(config.get("languages") or [])
            | set(config.get("thresholds_by_lang") or {})
        )
        deployed = self.deployed
        return ModelCardData(
            model_name=self.repo_id.split("/")[-1],
            base_model=self.options.base_model or _base_model(config),
            language=languages or None,
            license=self.options.license,
            library_name="transformers",
            pipeline_tag="text-classification",
            tags=["hubheads", "text-classification", self.kind.replace("_", "-")]
            + (["custom_code"] if self.remote else []),
            datasets=[self.options.dataset_id] if self.options.dataset_id else None,
            metrics=sorted({METRIC_TYPES[name][0] for name in reports["rules"][deployed]["metrics"]})
            if deployed
            else None,
            eval_results=_eval_results(reports, self.options, deployed) if deployed else None,
        )


def _eval_results(reports: Mapping[str, Any], options: CardOptions, deployed: str) -> list[Any]:
    """`EvalResult`s of the dev metrics: the decisions the repo makes, and the untuned ones (default threshold)."""
    from huggingface_hub import EvalResult

    dataset: dict[str, Any] = {
        "task_type": "text-classification",
        "dataset_type": options.dataset_id or "custom",
        "dataset_name": options.dataset_name,
        "dataset_split": "dev",
    }
    # (metrics, what they measure): the deployed decisions, the untuned ones, then each extra head's.
    groups = [(reports["rules"][rule]["metrics"], RULE_NAMES[rule]) for rule in (deployed, "default")]
    groups += [(head["metrics"], f"{task} head") for task, head in reports.get("tasks", {}).items()]
    results = []
    for metrics, measured in groups:
        for name, value in metrics.items():
            metric_type, metric_config, label = METRIC_TYPES[name]
            results.append(
                EvalResult(
                    **dataset,
                    metric_type=metric_type,
                    metric_config=metric_config,
                    metric_name=f"{label} ({measured})",
                    metric_value=round(float(value), 4),
                )
            )
    return results


# The sections. Each reads the context and returns markdown (or "" to leave its part of the template out).


def _description(context: CardContext) -> str:
    config = context.config
    return (
        f"A {context.kind.replace('_', '-')} text classifier ({config.get('model_type', '?')}) with labels "
        + ", ".join(f"`{name}`" for name in context.names)
        + ". Its repo carries the decision thresholds its author tuned"
        + (", applied by the repo's pipeline." if context.remote else ".")
    )


def _example_call(config: Mapping[str, Any]) -> str:
    if config.get("use_bio"):
        return 'clf(["post text"], bio=["the author\'s profile bio"], lang=["en"])'
    if config.get("thresholds_by_lang"):
        languages = sorted(config["thresholds_by_lang"])[:2]
        return f"clf([{', '.join(repr('a post') for _ in languages)}], lang={languages!r})"
    return 'clf(["a post to classify"])'


def _outputs_comment(kind: str) -> str:
    return {
        "multi_label": "# one list per input: every label whose score reaches its threshold",
        "multi_task": "# the trust decision, plus every head under 'tasks'",
    }.get(kind, "# [{'label': ..., 'score': ..., 'threshold': ...}] at the tuned threshold")


def _usage_remote(context: CardContext) -> str:
    options, repo_id = context.options, context.repo_id
    pinned = f'model="{repo_id}", {"trust_remote_code=True, " if context.remote else ""}revision="{options.revision}"'
    pin = code_pin(context.config)
    if pin:
        pinned += f", {pin}"
    opt_in = options.revision != "main" and not re.fullmatch(r"[0-9a-f]{40}", options.revision)
    lines = ["from transformers import pipeline", ""]
    if opt_in:
        lines += [
            f"# {repo_id}'s main branch, as before (no remote code, the untuned decisions):",
            f'# pipeline("text-classification", model="{repo_id}")',
            f"# {options.revision}: the tuned decisions, opted in with revision=",
        ]
    lines += [
        f'clf = pipeline("text-classification", {pinned})',
        f"{_example_call(context.config)}  {_outputs_comment(context.kind)}",
    ]
    return "\n".join(lines)


def _revision_note(context: CardContext) -> str:
    if context.options.revision == "main":
        return (
            'Remote code runs on your machine: replace `revision="main"` with a commit id of this repo (`hubheads '
            "push` prints it) so the code you run is the code you read."
        )
    return "`revision` pins the commit whose code you read: remote code runs on your machine."


def _usage_pip_intro(context: CardContext) -> str:
    repos = code_repos(context.config)
    if repos:
        return (
            "With `pip install hubheads`, the decisions come from the installed package; the model's code is still "
            f"{', '.join(repos)}'s, so the call keeps `trust_remote_code=True`:"
        )
    return (
        "With `pip install hubheads`, the same decisions come from the installed package and no code from the repo "
        "runs:"
    )


def _usage_pip(context: CardContext) -> str:
    remote = "trust_remote_code=True, " if code_repos(context.config) else ""
    return "\n".join(
        [
            "from transformers import pipeline",
            "from hubheads import HubheadsTextClassificationPipeline",
            "",
            f'clf = pipeline("text-classification", model="{context.repo_id}", '
            f"pipeline_class=HubheadsTextClassificationPipeline, {remote}"
            f'revision="{context.options.revision}")',
            _example_call(context.config),
        ]
    )


def _usage_load(context: CardContext) -> str:
    if context.config.get("model_type") not in ARCHITECTURES:
        return ""
    load_arguments = f'"{context.repo_id}", trust_remote_code=True, revision="{context.options.revision}"'
    return "\n".join(
        [
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
            "",
            "# The config class is this repo's code too, and transformers 5 reads the config before it",
            "# picks a tokenizer: without trust_remote_code=True it asks on the terminal. (`import hubheads`",
            "# instead loads both from the installed package, without trust_remote_code.)",
            f"tokenizer = AutoTokenizer.from_pretrained({load_arguments})",
            f"model = AutoModelForSequenceClassification.from_pretrained({load_arguments})",
        ]
    )


def _endpoint_request(context: CardContext) -> str:
    """A request body for the repo's Inference Endpoint (its handler.py), as `_example_call` calls the pipeline."""
    config = context.config
    if not (context.folder / HANDLER_FILE).is_file():
        return ""
    if config.get("use_bio"):
        body: dict[str, Any] = {"inputs": [{"text": "post text", "bio": "the author's profile bio", "lang": "en"}]}
    elif config.get("thresholds_by_lang"):
        languages = sorted(config["thresholds_by_lang"])[:2]
        body = {"inputs": ["a post"] * len(languages), "parameters": {"lang": languages}}
    else:
        body = {"inputs": ["a post to classify"]}
    return json.dumps(body, ensure_ascii=False)


def _decision_rule(context: CardContext) -> str:
    if context.kind == "multi_label":
        return (
            "Each label is returned when its sigmoid score reaches `label_thresholds[label]`, else "
            "`best_threshold_global`, else `default_threshold`."
        )
    return (
        f"`{context.names[1]}` is returned when its probability reaches `thresholds_by_lang[lang]` for the input's "
        'language, else `best_threshold_global`, else `default_threshold`. Pass `threshold_mode="default"` for the '
        "untuned decisions, or `threshold=` to override."
    )


def _thresholds_table(context: CardContext) -> str:
    config = context.config
    rows = [[f"`{key}`", config[key]] for key in ("default_threshold", "best_threshold_global") if key in config]
    rows += [[f"`thresholds_by_lang[{lang}]`", v] for lang, v in (config.get("thresholds_by_lang") or {}).items()]
    rows += [[f"`label_thresholds[{label}]`", v] for label, v in (config.get("label_thresholds") or {}).items()]
    return _table(["key", "value"], rows) if rows else ""


def _dev_results_intro(context: CardContext) -> str:
    reports = context.reports
    if not reports:
        return ""
    metric = reports["metric"]
    intro = f"On {reports['data']['rows']} dev rows (`{reports['data']['file']}`); thresholds maximise {metric}."
    if "grid" in reports:
        intro += (
            f" The exact search found {reports['best_global']['threshold']:.4f} ({metric} "
            f"{reports['best_global']['value']:.4f}); the best threshold of a 0.05 grid, "
            f"{reports['grid']['threshold']:.2f}, reaches {reports['grid']['value']:.4f}."
        )
    if reports.get("bootstrap", {}).get("resamples"):
        intro += (
            f" In brackets: 95% bootstrap intervals ({reports['bootstrap']['resamples']} resamples of the dev rows)."
        )
    return intro


def _dev_results_table(context: CardContext) -> str:
    reports, deployed = context.reports, context.deployed
    if not reports:
        return ""
    metric_names = list(next(iter(reports["rules"].values()))["metrics"])
    rows = []
    for rule in _ordered(reports["rules"]):
        values = reports["rules"][rule]
        intervals = values.get("intervals") or {}
        shown = RULE_NAMES[rule] + (" (deployed)" if rule == deployed else "")
        rows.append(
            [shown] + [with_interval(values["metrics"][name], intervals.get(name), digits=3) for name in metric_names]
        )
    return _table(["decision rule"] + [metric_name(m) for m in metric_names], rows)


def _figures(context: CardContext) -> str:
    if not context.figures:
        return ""
    captions = {
        THRESHOLD_FIGURE: (
            f"Dev {metric_name(context.reports['metric'])} at every threshold: the dashed line is the default "
            "threshold, the dots the thresholds the repo uses."
        ),
        SCORES_FIGURE: "The dev scores of each class, with the default (dashed) and tuned (solid) thresholds.",
    }
    return "\n\n".join(f"![{captions[name]}]({name})" for name in context.figures)


def _per_language_table(context: CardContext) -> str:
    reports = context.reports
    if not reports.get("by_lang"):
        return ""
    metric = reports["metric"]
    rules = _ordered(next(iter(reports["by_lang"].values()))["metrics"])

    def own(row: Mapping[str, Any]) -> str:
        reason = str(row.get("reason", "")).removeprefix("global: ")
        return "yes" if row["tuned"] else "no (global)" + (f": {reason}" if reason else "")

    return _table(
        ["language", "rows", "positives", "threshold", "own threshold"]
        + [f"{metric} @ {RULE_NAMES[r]}" for r in rules],
        [
            [lang, row["rows"], row["positives"], row["threshold"], own(row)]
            + [with_interval(row["metrics"][r], (row.get("intervals") or {}).get(r), digits=3) for r in rules]
            for lang, row in reports["by_lang"].items()
        ],
    )


def _per_label_table(context: CardContext) -> str:
    reports = context.reports
    if not reports.get("per_label"):
        return ""
    metric = reports["metric"]
    rows = []
    for label, row in reports["per_label"].items():
        intervals = row.get("intervals") or {}
        rows.append(
            [label, row["support"], row["threshold"], "yes" if row["tuned"] else "no (global)"]
            + [with_interval(row["metrics"][rule], intervals.get(rule), digits=3) for rule in ("default", "tuned")]
        )
    return _table(
        ["label", "positives", "threshold", "own threshold", f"{metric} @ default", f"{metric} @ tuned"], rows
    )


def _classification_reports(context: CardContext) -> str:
    reports, deployed = context.reports, context.deployed
    if not reports:
        return ""
    blocks = [
        f"### {RULE_NAMES[rule].capitalize()}{' (deployed)' if rule == deployed else ''}\n\n"
        + _report_table(reports["rules"][rule]["classification_report"])
        for rule in _ordered(reports["rules"])
        if rule in (deployed, "default")
    ]
    for task, head in (reports.get("tasks") or {}).items():
        intervals = head.get("intervals") or {}
        summary = ", ".join(
            f"{metric_name(name).lower()} {with_interval(value, intervals.get(name), digits=3)}"
            for name, value in head["metrics"].items()
        )
        blocks.append(f"### The `{task}` head\n\n{summary}\n\n" + _report_table(head["classification_report"]))
    return "\n\n".join(blocks)


def _hyperparameters(context: CardContext) -> str:
    values = context.options.hyperparameters
    if not values:
        return "Not given (pass `hubheads card --hyperparams FILE`)."
    return _table(["hyperparameter", "value"], [[f"`{k}`", f"`{v}`"] for k, v in values.items()])


def _configuration_table(context: CardContext) -> str:
    config = context.config
    backbone = config.get("backbone_config") or {}
    rows: list[list[Any]] = [
        ["architecture", ", ".join(config.get("architectures") or [config.get("model_type", "?")])],
        ["model type", config.get("model_type", "?")],
        ["kind", context.kind.replace("_", "-")],
        ["labels", ", ".join(f"`{name}`" for name in context.names)],
    ]
    if backbone:
        rows.append(["encoder", backbone.get("model_type", "?")])
    if config.get("type_label_names"):
        rows.append(["type labels", ", ".join(f"`{name}`" for name in config["type_label_names"])])
    for key in ("use_bio", "gated_bio", "use_lang_token", "languages", "text_normalize", "max_seq_length", "pooling"):
        if key in config:
            rows.append([key, config[key]])
    return _table(["", ""], rows)


def _tuned_in_sample(reports: Mapping[str, Any]) -> str:
    """What the limitations say of results measured on the rows the thresholds were chosen on."""
    rows = reports["data"]["rows"]
    estimate = cross_validated_estimate(reports)
    if estimate is None:
        return (
            f"The thresholds were chosen on the same {rows}-row dev set the results above are measured on, so those "
            "results are optimistic; expect somewhat lower scores on new data."
        )
    metric, values, folds = estimate
    return (
        f"The thresholds were tuned on the same {rows}-row dev set the results above are measured on: in-sample "
        f"{metric} {values['in_sample']:.3f}; cross-validated "
        f"{with_interval(values['estimate'], values['interval'], digits=3)} "
        f"(thresholds chosen on {folds - 1} of {folds} folds, scored on the held-out one). Expect about the "
        "cross-validated figure on new data like the dev set."
    )


def _limitations(context: CardContext) -> str:
    config, reports = context.config, context.reports
    items = []
    if reports:
        items.append(_tuned_in_sample(reports))
        by_lang = reports.get("by_lang") or {}
        untuned = sorted(lang for lang, row in by_lang.items() if not row["tuned"])
        if untuned:
            items.append(
                f"Languages without their own threshold ({', '.join(untuned)}; the per-language table says why), "
                "and languages not in the dev set, use the global threshold."
            )
        per_label = reports.get("per_label") or {}
        fallback = sorted(label for label, row in per_label.items() if not row["tuned"])
        if fallback:
            items.append(
                f"Labels with fewer than {reports['min_label_examples']} positive or negative dev rows "
                f"({', '.join(fallback)}) use the global threshold."
            )
    else:
        items.append("No dev results: the thresholds were not tuned with `hubheads tune`.")
    length = config.get("max_seq_length") or (config.get("backbone_config") or {}).get("max_position_embeddings")
    if length:
        items.append(f"Inputs longer than {length} tokens are truncated.")
    if config.get("use_bio"):
        items.append("Posts without an author bio take the model's no-bio path; decisions that need the bio degrade.")
    if context.remote:
        items.append(
            "The stock pipeline call runs this repo's Python files (`trust_remote_code=True`); read them and pin "
            "`revision`, or install hubheads to run the packaged copy instead."
        )
    encoder = config.get("model_type"), (config.get("backbone_config") or {}).get("model_type")
    for model_type in dict.fromkeys(name for name in encoder if name in NEWER_ENCODERS):
        items.append(
            f"Needs transformers >= {NEWER_ENCODERS[model_type]}, the first release with the native `{model_type}` "
            'architecture; older releases cannot load it ("does not recognize this architecture").'
        )
    for code_repo in code_repos(config):
        items.append(
            f"The model's own code is not in this repo: `auto_map` loads it from **{code_repo}**; installing hubheads "
            f"does not replace it. {pin_advice(config, code_repo)}"
        )
        if config.get("model_type") == NEW_FORMAT:
            items.append(
                f"**{code_repo}**'s code runs on transformers 4 only (tested on the releases hubheads supports up to "
                "4.57.6): transformers 5 leaves its rotary caches and position ids uninitialised when it loads the "
                "model, which then crashes or scores NaN. A re-export without `--keep-remote-code` uses hubheads' own "
                "implementation of the architecture instead, with the same weights, on every release."
            )
    if NewGteConfig.model_type in encoder:
        items.append(
            "The encoder is gte-multilingual-base's \"new\" architecture, run by hubheads' own implementation "
            "(`modeling_new_gte.py` in this repo, the original weights under their original names) rather than "
            "Alibaba-NLP/new-impl, whose code does not run on transformers 5; it is tested on transformers 4.46.1, "
            "4.57.6, 5.0.0 and the newest release."
        )
    return "\n".join(f"- {item}" for item in items)


def _precisions_table(context: CardContext) -> str:
    """What each precision does to the tuned decisions on the dev set, with the consumer's call (empty when `tune`
    did not measure it)."""
    from hubheads.precisions import CALLS, PRECISIONS, SPEED_FILE

    measured = (context.reports or {}).get("precisions") or {}
    if not measured:
        return ""
    speed_file = context.folder / SPEED_FILE
    speeds = read_json(speed_file) if speed_file.is_file() else {}
    metric = metric_name((context.reports or {}).get("metric", "macro_f1"))
    cpu = measured.get("cpu") or {}
    fast = "with" if cpu.get("avx512_bf16") or cpu.get("amx_bf16") else "without"
    rows = []
    for precision in PRECISIONS:
        entry = measured.get(precision) or {}
        if not entry or "skipped" in entry:
            continue
        call = CALLS[precision].format(model=context.repo_id)
        kept = "all kept" if entry["decisions_differ"] == 0 else f"{entry['decisions_differ']} changed"
        speed = (speeds.get(precision) or {}).get("speed_vs_float32")
        rows.append(
            f"| {precision} | `{call}` | {kept} (of {entry['rows']}) | {entry.get('metric', float('nan')):.3f} | "
            f"{f'{speed}x' if speed else 'not measured'} |"
        )
    intro = (
        f"The tuned decisions on the dev set at each precision, against float32 (thresholds tuned at "
        f"{(context.reports or {}).get('tuned_precision', 'float32')}; "
        f"probabilities are computed in float32 from the logits either way). Speeds were measured on the author's CPU "
        f"({cpu.get('model', 'unknown')}, {fast} AVX512-BF16/AMX): bfloat16 is fast only on CPUs that have them, and "
        "may be slower than float32 elsewhere. `dtype=` is `torch_dtype=` before transformers 4.56; the int8 line "
        "follows the float32 call."
    )
    header = f"| precision | call | dev decisions | {metric} | speed vs float32 |"
    return "\n".join([intro, "", header, "|---|---|---|---|---|", *rows])


def _releases_table(context: CardContext) -> str:
    """The last `hubheads verify --transformers` run recorded in the repo, as a table (empty without one)."""
    report = read_result(context.folder)
    if report is None:
        return ""
    results = {True: "runs; the author's outputs", False: "fails: "}
    rows = [f"| {row.version} | {results[row.ok]}{'' if row.ok else row.cause or ''} |" for row in report.rows]
    intro = (
        f"`hubheads verify --transformers` (hubheads {report.hubheads_version}, {report.date}, torch {report.torch}) "
        "ran this repo with the stock `pipeline(..., trust_remote_code=True)`, as a consumer without hubheads, twice "
        "per release in fresh processes, and compared the outputs with the author's (scores to 1e-4, decisions "
        "exactly):"
    )
    return "\n".join([intro, "", "| transformers | result |", "|---|---|", *rows])


#: The card's sections, by the name the template gives them.
SECTIONS: dict[str, Callable[[CardContext], str]] = {
    "description": _description,
    "usage_remote": _usage_remote,
    "revision_note": _revision_note,
    "usage_pip_intro": _usage_pip_intro,
    "releases_table": _releases_table,
    "precisions_table": _precisions_table,
    "usage_pip": _usage_pip,
    "usage_load": _usage_load,
    "endpoint_request": _endpoint_request,
    "decision_rule": _decision_rule,
    "thresholds_table": _thresholds_table,
    "dev_results_intro": _dev_results_intro,
    "dev_results_table": _dev_results_table,
    "figures": _figures,
    "per_language_table": _per_language_table,
    "per_label_table": _per_label_table,
    "classification_reports": _classification_reports,
    "hyperparameters": _hyperparameters,
    "configuration_table": _configuration_table,
    "limitations": _limitations,
}


def render_card(model_dir: str | os.PathLike, options: CardOptions | None = None) -> Any:
    """The `ModelCard` of the repo in `model_dir`, from its config.json and (if tuned) reports.json.

    The card shows the figures of `hubheads.figures` that reports.json holds the data for; `write_card` draws them.
    """
    return _render(CardContext.read(model_dir, options))


def _render(context: CardContext) -> Any:
    from huggingface_hub import ModelCard

    from hubheads import __version__

    template = resources.files("hubheads.hub_templates").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return ModelCard.from_template(
        context.card_data(),
        template_str=template,
        title=context.repo_id.split("/")[-1],
        hubheads_version=__version__,
        has_reports=bool(context.reports),
        **{name: section(context) for name, section in SECTIONS.items()},
    )


def _merge_front_matter(author: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """The author's front matter, completed with ours: keys the author set are kept (license, language, ...), `tags`
    are united, and `model-index` results are merged, ours replacing those with the same task, dataset and metric."""
    merged = dict(author)
    for key, value in ours.items():
        if key == "tags":
            merged[key] = list(dict.fromkeys([*(author.get(key) or []), *value]))
        elif key == "model-index" and author.get(key):
            merged[key] = _merge_model_index(author[key], value)
        elif author.get(key) in (None, [], ""):
            merged[key] = value
    return merged


def _merge_model_index(author: list[Any], ours: list[Any]) -> list[Any]:
    def key(result: Mapping[str, Any], metric: Mapping[str, Any]) -> str:
        return json.dumps([result.get("task"), result.get("dataset"), metric.get("type"), metric.get("name")])

    ours_keys = {key(result, metric) for entry in ours for result in entry["results"] for metric in result["metrics"]}
    kept = []
    for entry in author:
        results = []
        for result in entry.get("results") or []:
            metrics = [metric for metric in result.get("metrics") or [] if key(result, metric) not in ours_keys]
            if metrics:
                results.append({**result, "metrics": metrics})
        if results:
            kept.append({**entry, "results": results})
    return kept + list(ours)


def _section(text: str) -> str:
    """The hubheads section of a card, markers included."""
    start, end = text.index(SECTION_START), text.index(SECTION_END) + len(SECTION_END)
    return text[start:end]


def merge_into_readme(existing: str, card: Any) -> str:
    """`existing` (an author's README) with the hubheads section of `card` written in (replacing an earlier one, else
    appended) and the front matter merged; every other line of the author's text is kept."""
    from huggingface_hub import ModelCard, ModelCardData

    author = ModelCard(existing, ignore_metadata_errors=True)
    front = ModelCardData(**_merge_front_matter(author.data.to_dict(), card.data.to_dict()))
    body, section = author.text, _section(card.content)
    if SECTION_START in body and SECTION_END in body:
        body = body.replace(_section(body), section)
    else:
        body = body.rstrip("\n") + "\n\n" + section + "\n"
    return "---\n" + front.to_yaml() + "\n---\n\n" + body.lstrip("\n")


def write_card(
    model_dir: str | os.PathLike,
    options: CardOptions | None = None,
    *,
    force: bool = False,
    trust_remote_code: bool = False,
) -> Path:
    """Render the card of `model_dir` and write it to `model_dir/README.md` (atomically); return its path.

    An existing README.md (the author's own, or an earlier card) keeps its text: only the hubheads section (between
    `SECTION_START` and `SECTION_END`, appended when missing) is rewritten and the front matter merged (the author's
    keys kept, `tags` and `model-index` merged). `force=True` replaces it wholesale with a fresh card. The figures
    the card shows (`hubheads.figures`: threshold curves, score distributions) are drawn into `model_dir` first.
    A repo whose `auto_map` runs another repo's code needs `trust_remote_code=True`, since the card tells consumers
    to run it.
    """
    path = Path(model_dir) / CARD_FILE
    if (Path(model_dir) / "config.json").is_file():
        config = read_json(Path(model_dir) / "config.json")
        check_trusted(config, model_dir, trust_remote_code)
        if "custom_pipelines" in config and not (path.parent / HANDLER_FILE).exists():
            # A repo exported before hubheads wrote the Inference Endpoints handler: the card documents it, so add it.
            copy_resource("hubheads.modeling", HANDLER_FILE, path.parent / HANDLER_FILE)
    context = CardContext.read(model_dir, options)
    card = _render(context)
    draw_figures(context.reports, model_dir)  # before the card that shows them
    text = str(card)
    if path.exists() and not force:
        text = merge_into_readme(path.read_text(encoding="utf-8"), card)
    write_atomically(path, text)
    return path


__all__ = ["CardOptions", "merge_into_readme", "read_hyperparameters", "render_card", "write_card"]

"""The PNG figures `hubheads card` draws into a repo from its reports.json, and shows in the card.

- `threshold_curves.png`: the tuned metric at every threshold (the exact cut points `tune` recorded), one line for
  all dev rows and one per language with its own threshold (binary and multi-task models) or per label
  (multi-label), with the default threshold and each chosen one marked.
- `score_distributions.png`: how the scores of each class spread over [0, 1] (one panel per label for multi-label
  models), with the same thresholds marked.

matplotlib is author tooling: only this module imports it, and only when `card` draws. The figures have a white
background and dark ink, so they read the same in the Hub's light and dark themes, use colour-blind-safe colours
(Okabe-Ito), and stay small (about 30-60 KB). They carry no timestamp, so the same reports give the same bytes.
"""

from __future__ import annotations

import bisect
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hubheads.atomic import write_atomically
from hubheads.reports import metric_name

THRESHOLD_FIGURE = "threshold_curves.png"
SCORES_FIGURE = "score_distributions.png"
FIGURES = (THRESHOLD_FIGURE, SCORES_FIGURE)
#: Okabe-Ito colours, without yellow (too light on white).
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
INK, GRID = "#222222", "#DDDDDD"
MAX_PANELS = 12


def figures_of(reports: Mapping[str, Any]) -> list[str]:
    """The figures `reports` holds the data for (a reports.json from before hubheads drew figures has none)."""
    return [name for name, key in zip(FIGURES, ("curves", "score_histograms")) if reports.get(key)]


def _lines(reports: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], float]]:
    """The curves to draw, each with its name and the threshold its decisions use."""
    curves = reports["curves"]
    if "per_label" in curves:
        return [
            (label, curves["per_label"][label], reports["per_label"][label]["threshold"])
            for label in curves["per_label"]
        ]
    global_threshold = reports["best_global"]["threshold"]
    lines = [("all dev rows", curves["pooled"], global_threshold)]
    for lang, curve in curves.get("by_lang", {}).items():
        row = reports["by_lang"][lang]
        if row["tuned"]:
            lines.append((f"{lang} ({row['rows']} rows)", curve, row["threshold"]))
    return lines


def _style(axes: Any, xlabel: str, ylabel: str) -> None:
    axes.set_xlim(0, 1)
    axes.set_xlabel(xlabel, color=INK)
    axes.set_ylabel(ylabel, color=INK)
    axes.grid(color=GRID, linewidth=0.6)
    axes.tick_params(colors=INK, labelsize=8)
    for spine in axes.spines.values():
        spine.set_color("#888888")


def _threshold_figure(reports: Mapping[str, Any]) -> Any:
    from matplotlib.figure import Figure

    metric = metric_name(reports["metric"])
    default = reports["thresholds"]["default_threshold"]
    lines = _lines(reports)[: len(COLOURS)]
    figure = Figure(figsize=(7, 3.6), dpi=100, facecolor="white", layout="constrained")
    axes = figure.subplots()
    axes.axvline(default, color="#777777", linestyle="--", linewidth=1, label=f"default {default:g}")
    for (name, curve, threshold), colour in zip(lines, COLOURS):
        axes.plot(curve["thresholds"], curve["values"], drawstyle="steps-pre", color=colour, linewidth=1.4, label=name)
        # values[i] holds for the thresholds in (thresholds[i - 1], thresholds[i]].
        at = min(bisect.bisect_left(curve["thresholds"], threshold), len(curve["values"]) - 1)
        axes.plot([threshold], [curve["values"][at]], marker="o", markersize=6, color=colour, markeredgecolor="white")
    axes.set_title(f"Dev {metric} by threshold (dots: the thresholds the repo uses)", color=INK, fontsize=10)
    _style(axes, "threshold", f"dev {metric}")
    # Below the lowest score and above the highest the curves are flat: show the range where decisions change.
    marked = [default] + [threshold for _, _, threshold in lines]
    low = min([curve["thresholds"][1] for _, curve, _ in lines if len(curve["thresholds"]) > 2] + marked)
    high = max([curve["thresholds"][-2] for _, curve, _ in lines if len(curve["thresholds"]) > 2] + marked)
    margin = max(0.05 * (high - low), 0.01)
    axes.set_xlim(max(low - margin, 0.0), min(high + margin, 1.0))
    axes.legend(fontsize=8, frameon=False, loc="best", labelcolor=INK)
    return figure


def _scores_figure(reports: Mapping[str, Any]) -> Any:
    import numpy as np
    from matplotlib.figure import Figure

    histograms = reports["score_histograms"]
    panels = list(histograms["panels"].items())[:MAX_PANELS]
    edges = np.linspace(0, 1, histograms["bins"] + 1)
    columns = 1 if len(panels) == 1 else 2 if len(panels) <= 4 else 3
    rows = -(-len(panels) // columns)
    size = (6, 3) if len(panels) == 1 else (7, 2.2 * rows + 0.7)
    figure = Figure(figsize=size, dpi=100, facecolor="white", layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True)
    default = reports["thresholds"]["default_threshold"]
    per_label = reports.get("per_label") or {}
    colours = (COLOURS[1], COLOURS[0])  # negative class, positive class
    for index, (axes, (panel, classes)) in enumerate(zip(grid.flat, panels)):
        (negative, negative_counts), (positive, positive_counts) = classes.items()
        for name, counts, colour in ((negative, negative_counts, colours[0]), (positive, positive_counts, colours[1])):
            counts = np.asarray(counts, dtype=float)
            share = counts / counts.sum() if counts.sum() else counts
            axes.stairs(share, edges, fill=True, alpha=0.2, color=colour)
            shown = (
                f"{name} ({int(counts.sum())})"
                if len(panels) == 1
                else ("label absent", "label present")[name == positive]
            )
            axes.stairs(share, edges, color=colour, linewidth=1.2, label=shown)
        tuned = per_label[panel]["threshold"] if panel in per_label else reports["best_global"]["threshold"]
        axes.axvline(default, color="#777777", linestyle="--", linewidth=1)
        axes.axvline(tuned, color=INK, linewidth=1.2)
        title = (
            panel
            if len(panels) == 1
            else f"{panel}: {int(sum(positive_counts))} of {int(sum(positive_counts) + sum(negative_counts))} rows"
        )
        axes.set_title(title, color=INK, fontsize=9)
        _style(
            axes, "score" if index >= len(panels) - columns else "", "share of class" if index % columns == 0 else ""
        )
        if len(panels) == 1 or index == 0:
            axes.legend(fontsize=7, frameon=False, labelcolor=INK, loc="upper center")
    for axes in list(grid.flat)[len(panels) :]:
        axes.set_visible(False)
    figure.suptitle("Dev score distributions (dashed: default threshold, solid: tuned)", color=INK, fontsize=10)
    return figure


def render_figure(name: str, reports: Mapping[str, Any]) -> bytes:
    """The PNG bytes of figure `name` (one of `FIGURES`)."""
    figure = (_threshold_figure if name == THRESHOLD_FIGURE else _scores_figure)(reports)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, facecolor="white", metadata={"Software": None})
    return buffer.getvalue()


def draw_figures(reports: Mapping[str, Any], folder: str | os.PathLike) -> list[Path]:
    """Write each figure `reports` holds the data for into `folder` (atomically); return their paths."""
    written = []
    for name in figures_of(reports):
        write_atomically(Path(folder) / name, render_figure(name, reports))
        written.append(Path(folder) / name)
    return written


__all__ = ["FIGURES", "SCORES_FIGURE", "THRESHOLD_FIGURE", "draw_figures", "figures_of", "render_figure"]

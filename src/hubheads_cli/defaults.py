"""The defaults and choices that `hubheads --help` shows and the library uses, in one place that imports only the
standard library.

`import hubheads` registers the architectures with the transformers Auto classes, which imports torch and
transformers (seconds). The command line answers `--help`, `CMD --help` and argument errors before any of that, so
what its parsers show lives here, and the modules that own each value (`hubheads.tuning`, `hubheads.score`, ...)
import it from here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("hubheads")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"

# tune (`hubheads.tuning`, `hubheads.uncertainty`)
#: What the thresholds can maximise.
METRICS = ("macro_f1", "f1", "accuracy", "balanced_accuracy")
#: Dev rows of both classes a language needs for a threshold of its own.
MIN_LANG_EXAMPLES = 20
BOOTSTRAP_RESAMPLES = 1000
FOLDS = 5
#: Seed of the bootstrap resamples and the cross-validation folds.
SEED = 0

# tune, score (`hubheads.precisions`)
#: The precisions tune compares and score runs at: float32 (the reference), bfloat16 weights, dynamic int8 (a copy of
#: modeling/configuration_hubheads.py's MEASURED_PRECISIONS, which config.json's `tuned_precision` takes).
PRECISIONS = ("float32", "bfloat16", "int8")

# score (`hubheads.score`)
#: What a bad row does: stop the run with its row number, or go into the errors file.
ON_ERROR = ("stop", "skip")
DEFAULT_CHUNK_SIZE = 2048

# verify --transformers (`hubheads.release_envs`)
#: The transformers releases checked by default: the floor, the last 4.x, the first 5.x, and the newest.
DEFAULT_RELEASES = ("4.46.1", "4.57.6", "5.0.0", "latest")

# demo (`hubheads.demo`)
#: Training and tuning run on one thread. Float sums split over threads add up in another order, so with torch's
#: default (a thread per core) the weights, and every figure printed, would change with the machine's core count; and
#: on cores that other work shares, threads that wait for one another make a step several times slower.
DEMO_THREADS = 1
#: Optimizer steps of each model (of each of its three phases, for the multi-task model): one to two passes over its
#: training rows. The example sets are small and made of templates: trained longer, a model learns them by heart, its
#: dev scores pile up at 0 and 1, and the best thresholds jump to extremes (0.99, 0.06) that flip whole phrasings.
TRAIN_STEPS = {"supportive-minilm": 36, "post-tags-minilm": 60, "trust-type-minilm": 40, "reclaim-bio-minilm": 44}

# Values of the files that ship into Hub repos (modeling/), which import nothing of hubheads: a copy each, which
# tests/test_cli_start.py checks against the original.
#: `threshold_mode` values of the pipeline (`modeling/configuration_hubheads.py`, THRESHOLD_MODES).
THRESHOLD_MODES = ("auto", "default", "global", "by_lang")
#: The first transformers release with the native gte architecture (`modeling/configuration_backbone.py`).
NATIVE_GTE_TRANSFORMERS = "5.18.0"

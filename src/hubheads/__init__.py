"""hubheads: ship text classifiers to the Hugging Face Hub with their tuned decisions.

```python
from hubheads import HubheadsTextClassificationPipeline, export_model
```

Heavy modules (torch, transformers) load on first use of the names below, not at import.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hubheads")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

_LAZY = {
    "DecisionThresholds": "hubheads.modeling.configuration_hubheads",
    "HubheadsTextClassificationPipeline": "hubheads.modeling.pipeline_hubheads",
    "ExportReport": "hubheads.export",
    "export_model": "hubheads.export",
    "install_in_offline_cache": "hubheads.hub",
    "run_stock_pipeline": "hubheads.hub",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hubheads' has no attribute {name!r}")

"""hubheads: ship text classifiers to the Hugging Face Hub with their tuned decisions.

```python
from hubheads import HubheadsTextClassificationPipeline, export_model
```

Importing hubheads registers its architectures with the transformers Auto classes (see `architectures.py`), so
`AutoModelForSequenceClassification.from_pretrained(repo)` loads them without `trust_remote_code`. The other names
load on first use.
"""

from importlib import import_module

from hubheads.architectures import register_architectures
from hubheads.modeling.configuration_gated_bio import GatedBioConfig
from hubheads.modeling.configuration_residual_type_fusion import ResidualTypeFusionConfig
from hubheads.modeling.modeling_gated_bio import GatedBioForSequenceClassification
from hubheads.modeling.modeling_hubheads import WrappedEncoderMixin
from hubheads.modeling.modeling_residual_type_fusion import ResidualTypeFusionForSequenceClassification
from hubheads_cli.defaults import VERSION as __version__

#: The class name the public multi-task card imports ("from transformers import ResidualTypeFusionPhoBERT", which
#: never existed): after `pip install hubheads`, `from hubheads import ResidualTypeFusionPhoBERT` works.
ResidualTypeFusionPhoBERT = ResidualTypeFusionForSequenceClassification

register_architectures()


def _load_encoder(backbone, **options):
    """`from_backbone`'s loader of a named encoder (`hubheads.sources.load_encoder`), imported on first use."""
    from hubheads.sources import load_encoder

    return load_encoder(backbone, **options)


# The modeling files ship into Hub repos and import nothing of hubheads; the package gives its own copy of them the
# training-time loader (revisions, pickle consent, "new"-format GTE as hubheads' `new_gte`).
WrappedEncoderMixin.encoder_loader = staticmethod(_load_encoder)  # type: ignore[assignment]

_LAZY = {
    "DecisionThresholds": "hubheads.modeling.configuration_hubheads",
    "HubheadsTextClassificationPipeline": "hubheads.modeling.pipeline_hubheads",
    "PipelineInputError": "hubheads.modeling.pipeline_hubheads",
    "ExportReport": "hubheads.export",
    "GatedBioCollator": "hubheads.training",
    "add_language_tokens": "hubheads.training",
    "export_model": "hubheads.export",
    "import_weights": "hubheads.importing",
    "load_encoder": "hubheads.sources",
    "install_in_offline_cache": "hubheads.offline_hub",
    "PushResult": "hubheads.push",
    "push_folder": "hubheads.push",
    "run_stock_pipeline": "hubheads.offline_hub",
    "run_stock_pipelines": "hubheads.offline_hub",
}

__all__ = [
    "__version__",
    "GatedBioConfig",
    "GatedBioForSequenceClassification",
    "ResidualTypeFusionConfig",
    "ResidualTypeFusionForSequenceClassification",
    "ResidualTypeFusionPhoBERT",
    "register_architectures",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hubheads' has no attribute {name!r}")

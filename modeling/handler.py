"""Hugging Face Inference Endpoints handler: a deployed endpoint returns the decisions this repo's author tuned.

An endpoint runs the stock task (untuned decisions, one head, no bios) unless the repo ships a `handler.py` with an
`EndpointHandler` class. This one builds the stock `pipeline("text-classification", model=path,
trust_remote_code=True)`, which runs the repo's own pipeline file (config.json `custom_pipelines`), and answers each
request body with that pipeline's output:

```
POST {"inputs": "ciao a tutti", "parameters": {"lang": "it"}}
POST {"inputs": ["post one", "post two"], "parameters": {"lang": ["it", "en"], "threshold_mode": "default"}}
POST {"inputs": {"text": "the post", "bio": "the author's bio"}}
```

`inputs` takes what the pipeline takes (a string, a dict with `text` and optional `text_pair`, `lang`, `bio`, or a
list of those); `parameters` are the pipeline's call arguments (`PARAMETERS`). The answer is the pipeline's output as
JSON. A request whose scores come out NaN or infinite (a model that reads memory its load never set, as remote code
written for transformers 4 can on 5.x) is refused with a `ValueError` instead of answered: a NaN passes no threshold,
so it would come back as a confident-looking decision. This file is copied verbatim into exported Hub repos: it
imports only the standard library, torch and transformers.
"""

import os
from typing import Any

import torch
import transformers
from transformers import pipeline

#: The environment variable that picks the precision the endpoint runs the model at: float32 (the default), bfloat16
#: or int8 (dynamic); the repo's card says how many dev decisions each changes.
PRECISION_VARIABLE = "HUBHEADS_PRECISION"
#: The call arguments a request may set: the hubheads pipeline's own and the stock text-classification ones.
PARAMETERS = ("lang", "bio", "threshold", "threshold_mode", "top_k", "function_to_apply", "batch_size", "truncation")


def _refuse_non_finite(module: Any, inputs: Any, output: Any) -> None:
    """A forward hook: raise a `ValueError` when the model's logits hold NaN or infinite values."""
    logits = output.logits if hasattr(output, "logits") else output[0]
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(
            f"The model gave NaN or infinite scores (transformers {transformers.__version__}), so no decision can be "
            "made from them. Its code may read memory its load never set (non-persistent buffers that transformers 5 "
            "leaves uninitialised); run `hubheads verify --trust-remote-code` on the repo."
        )


class EndpointHandler:
    """The `handler.py` convention of Inference Endpoints: built once with the repo's path, then called per request.

    Args:
        path (`str`): the folder the endpoint downloaded this repo into.
    """

    def __init__(self, path: str = ""):
        device = 0 if torch.cuda.is_available() else -1
        self.pipeline = pipeline("text-classification", model=str(path), trust_remote_code=True, device=device)
        precision = os.environ.get(PRECISION_VARIABLE, "float32")
        model: Any = self.pipeline.model
        if precision == "bfloat16":
            model = model.to(torch.bfloat16)
        elif precision == "int8":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        elif precision != "float32":
            raise ValueError(f"{PRECISION_VARIABLE} must be float32, bfloat16 or int8, got {precision!r}.")
        self.pipeline.model = model
        self.pipeline.model.register_forward_hook(_refuse_non_finite)

    def __call__(self, data: dict[str, Any]) -> Any:
        """Answer one request body, `{"inputs": ..., "parameters": {...}}`, with the pipeline's decisions."""
        if not isinstance(data, dict) or "inputs" not in data:
            raise ValueError('The request body must be a JSON object with "inputs" (and optionally "parameters").')
        parameters = data.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ValueError(f'"parameters" must be a JSON object, got {type(parameters).__name__}.')
        unknown = sorted(set(parameters) - set(PARAMETERS))
        if unknown:
            raise ValueError(f'Unknown "parameters" {unknown}; this endpoint takes {list(PARAMETERS)}.')
        return self.pipeline(data["inputs"], **parameters)

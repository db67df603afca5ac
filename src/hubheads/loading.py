"""Loading a repo's hubheads pipeline as a consumer with hubheads installed, for the commands that score (`tune`,
`score`, the Ray scorer): the registered architectures, never the repo's copy of hubheads code, and remote code from
another repo only when trusted. Every load goes through `hubheads.output_checks`: a model whose outputs cannot be
used (NaN, load-dependent, failing inside its code) stops the command before anything is decided.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hubheads.errors import SourceNotFoundError
from hubheads.resolve import resolve_checkpoint


def load_pipeline(
    model: str | os.PathLike,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    device: Any = None,
    option: str = "MODEL",
) -> Any:
    """The hubheads pipeline of a repo folder or Hub repo id (offline: from the local cache), loaded as a consumer
    with hubheads installed: the registered architectures, never the repo's copy of hubheads code; remote code from
    another repo (an `auto_map` into it) only with `trust_remote_code`, which is refused at once otherwise."""
    folder = resolve_checkpoint(model, revision, option=option)
    return pipeline_in(folder, model, trust_remote_code=trust_remote_code, device=device, option=option)


def pipeline_in(folder: Path, model: Any, *, trust_remote_code: bool, device: Any, option: str) -> Any:
    """`load_pipeline` of `model` once it is the local `folder`."""
    from transformers import pipeline

    import hubheads  # noqa: F401  (registers the hubheads architectures)
    from hubheads.modeling.pipeline_hubheads import HubheadsTextClassificationPipeline
    from hubheads.output_checks import check_fresh_loads, guard_outputs, load_classifier, probe
    from hubheads.repo_files import read_json
    from hubheads.sources import check_trusted, runs_remote_code

    if not (folder / "config.json").is_file():
        raise SourceNotFoundError(f"{option} {model} has no config.json; pass an exported repo or checkpoint folder.")
    config = read_json(folder / "config.json")
    check_trusted(config, model, trust_remote_code)
    # Explicit, so transformers never prompts: True only for a checkpoint whose code lives in a repo (and the caller
    # trusted it); a hubheads architecture then loads with the registered classes, not the repo's copy.
    remote_code = runs_remote_code(config)
    what = f"{option} {model}"
    loaded, tokenizer = load_classifier(folder, trust_remote_code=remote_code, what=what, config=config)
    if remote_code:  # code hubheads does not know: it must give the same scores in a consumer's fresh process
        check_fresh_loads(folder, probe(loaded, tokenizer, what, config), what, config)
    guard_outputs(loaded, what, config)  # every forward pass: no decision is made from a NaN
    return pipeline(
        "text-classification",
        model=loaded,
        tokenizer=tokenizer,
        pipeline_class=HubheadsTextClassificationPipeline,
        device=device,
    )


__all__ = ["load_pipeline", "pipeline_in"]

"""A threshold-aware text-classification pipeline for the stock `pipeline(..., trust_remote_code=True)` call.

Exported hubheads repos declare this class in config.json `custom_pipelines`, so

```python
from transformers import pipeline

clf = pipeline("text-classification", model="org/repo", trust_remote_code=True)
clf(["ciao a tutti", "hello"], lang=["it", "en"])
```

applies the decisions the author tuned (see `configuration_hubheads.py` for the config keys):

- binary models: label 1 when its probability reaches the threshold of the input's language
  (`thresholds_by_lang[lang]`, else `best_threshold_global`, else `default_threshold`, else 0.5);
- multi-label models (`problem_type="multi_label_classification"`): every label whose probability reaches its
  threshold (`label_thresholds[label]`, else the rule above), highest first;
- multi-task models (config `task_heads()`, e.g. residual type fusion): the primary head's decision at the top
  level, and every head's prediction under `tasks`;
- a model that configures none of this gives exactly the stock `TextClassificationPipeline` output.

This file is copied verbatim into exported Hub repos: it imports only the standard library, torch and transformers.
"""

import inspect
import itertools
import re
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Optional

import torch
from transformers import BatchEncoding, TextClassificationPipeline
from transformers.utils import logging

from .configuration_hubheads import (
    PRECISION_KEYS,
    THRESHOLD_MODES,
    DecisionThresholds,
    PrecisionRecord,
    validate_threshold,
)

logger = logging.get_logger(__name__)

# Encoders whose position ids start after the padding index, so `max_position_embeddings` overstates the length.
_POSITION_OFFSET_MODEL_TYPES = (
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "roberta-prelayernorm",
    "camembert",
    "longformer",
    "bertweet",
    "phobert",
    "mpnet",
    "data2vec-text",
    "xmod",
)
_ITEM_KEYS = ("text", "text_pair", "lang", "bio")
#: A UTF-16 surrogate on its own: valid in a Python string, but not Unicode text a tokenizer can encode.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_LANG_KEY = "hubheads_lang"
# The hubheads architectures: sequence classifiers the stock pipeline's model check does not know by name.
_HUBHEADS_MODEL_TYPES = ("residual_type_fusion", "gated_bio_classifier")
#: How many pooled bio vectors a pipeline keeps by default (a few MB at hidden size 768).
DEFAULT_BIO_CACHE_SIZE = 4096


class PipelineInputError(TypeError, ValueError):
    """Bad input to the pipeline (a call argument or an input of the wrong type, shape or value).

    It is both a `TypeError` and a `ValueError`: the stock pipeline raises one or the other for bad input, so code
    written against it (`except ValueError:` or `except TypeError:`) keeps catching what this pipeline raises.
    """


class PrecisionWarning(UserWarning):
    """The model runs at another precision than the one its thresholds were tuned at."""


def running_precision(model: Any) -> str:
    """The precision `model` runs at: `"int8"` when dynamic int8 layers are in it, else its parameters' dtype
    (`"float32"`, `"bfloat16"`, `"float16"`, ...)."""
    for module in model.modules():
        if type(module).__module__.startswith(("torch.ao.nn.quantized", "torch.nn.quantized")):
            return "int8"
    dtype = getattr(model, "dtype", None) or next(model.parameters()).dtype
    return str(dtype).replace("torch.", "")


def _aligned(value: Any, name: str, count: int) -> list[Any]:
    """`value` repeated for `count` inputs, or `value` itself when it is a list aligned with them."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise PipelineInputError(
                f"`{name}` has {len(value)} entries but {count} inputs were given; pass one per input."
            )
        return list(value)
    return [value] * count


class _Item(dict):
    """One input as `__call__` checked it: `{"text", "text_pair", "lang", "bio"}`.

    `encoding` is its model inputs (`(1, length)` tensors, bio inputs included) when `__call__` tokenized its list in
    batched tokenizer calls; `None` when `preprocess` tokenizes it."""

    encoding: Optional[dict[str, Any]] = None


def _row(encoded: Any, index: int) -> dict[str, Any]:
    """Input `index` of a batched tokenizer call as tokenizing it alone with `return_tensors="pt"` gives it:
    `(1, length)` tensors, converted by the installed transformers' own rules."""
    return dict(BatchEncoding({key: [rows[index]] for key, rows in encoded.items()}, tensor_type="pt"))


def _bio_keys(encoded: Any) -> dict[str, Any]:
    """A tokenized bio's ids and mask under the names the model's forward takes them by."""
    return {"bio_input_ids": encoded["input_ids"], "bio_attention_mask": encoded["attention_mask"]}


class BioVectorCache:
    """A bounded, thread-safe LRU of pooled bio vectors (`encode_bios` rows), keyed by a bio's token ids.

    The entries belong to one state of the model (`HubheadsTextClassificationPipeline._bio_state`: the model object,
    the storage and in-place version of each of its weights and buffers, its pooling). A lookup under another state
    empties the cache first, and vectors computed under a state that has since changed are not stored, so it never
    answers with a vector of weights that have changed since.

    Args:
        maxsize (`int`, *optional*, defaults to 4096):
            The most vectors kept, least recently used dropped first; 0 keeps none. Settable on a live cache.
    """

    def __init__(self, maxsize: int = DEFAULT_BIO_CACHE_SIZE):
        self._entries: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._state: Optional[tuple] = None
        self._lock = threading.Lock()
        self._maxsize = 0
        self.maxsize = maxsize

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PipelineInputError(
                f"`bio_cache_size` must be an integer >= 0 (0 turns the bio cache off), got {value!r}."
            )
        with self._lock:
            self._maxsize = value
            self._trim()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every vector (hubheads does this itself when the model's weights change; see the class docstring)."""
        with self._lock:
            self._entries.clear()
            self._state = None

    def lookup(self, keys: Sequence[tuple], state: tuple) -> list[Optional[torch.Tensor]]:
        """The vector of each key, `None` where none is cached; the found ones become the most recently used."""
        with self._lock:
            if state != self._state:
                self._entries.clear()
                self._state = state
            found = [self._entries.get(key) for key in keys]
            for key, vector in zip(keys, found):
                if vector is not None:
                    self._entries.move_to_end(key)
            return found

    def store(self, pairs: Iterable[tuple[tuple, torch.Tensor]], state: tuple) -> None:
        """Keep (key, vector) pairs computed under `state`, unless the model has changed since (then drop them)."""
        with self._lock:
            if state != self._state:
                return
            for key, vector in pairs:
                self._entries[key] = vector
                self._entries.move_to_end(key)
            self._trim()

    def _trim(self) -> None:
        while len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)


def _is_legacy_pair(item: Any) -> bool:
    """`[["text", "pair"]]`: a list holding one list of two strings, a text pair in old releases of the pipeline."""
    return (
        isinstance(item, list)
        and len(item) == 1
        and isinstance(item[0], list)
        and len(item[0]) == 2
        and all(isinstance(text, str) for text in item[0])
    )


class HubheadsTextClassificationPipeline(TextClassificationPipeline):
    """`TextClassificationPipeline` that applies the decision thresholds stored in the model config.

    Call arguments, besides the stock `top_k`, `function_to_apply` and `batch_size`:

        lang (`str` or `list[str]`, *optional*):
            Language code of the inputs (one for all, or a list aligned with them). A dict input may carry its own
            `"lang"` key instead.
        threshold (`float`, *optional*):
            Overrides every configured threshold for this call.
        threshold_mode (`str`, *optional*, defaults to `"auto"`):
            `"auto"`, `"default"` (the untuned decisions), `"global"` or `"by_lang"`; see
            `DecisionThresholds.resolve`.
        bio (`str` or `list[str]`, *optional*):
            The authors' profile bios, for models that read one (gated-bio); `None`, `""` and blank all mean "no
            bio". A dict input may carry its own `"bio"` key instead.

    Pipeline argument (`pipeline(..., bio_cache_size=...)` or the constructor):

        bio_cache_size (`int`, *optional*, defaults to 4096):
            For a model that reads bios and pools them apart (`encode_bios`), how many pooled bio vectors the pipeline
            keeps between calls (`BioVectorCache`, as `self.bio_cache`; `clf.bio_cache.maxsize = n` resizes it,
            `clf.bio_cache.clear()` empties it). Each distinct bio of a call is encoded once, and again in a later
            call only if it has left the cache or the model's weights have changed. 0 turns it off: each batch then
            encodes its own distinct bios.

    Inputs are a string, a list of strings, a dict `{"text": ..., "text_pair": ..., "lang": ..., "bio": ...}`, or a
    list, generator or dataset of those (any iterator, for a configured model). Inputs longer than the model takes are
    truncated to its length unless `truncation=False`. A list run with `batch_size > 1` on a model that configures
    anything goes in length-sorted batches (one author's posts together for a bio model); results always come back in
    input order. A model that configures nothing, called without this class's own arguments, takes exactly the
    stock inputs and gives exactly the stock outputs and errors.
    """

    def __init__(self, *args, **kwargs):
        self.bio_cache = BioVectorCache(kwargs.pop("bio_cache_size", DEFAULT_BIO_CACHE_SIZE))
        super().__init__(*args, **kwargs)
        config = self.model.config
        self.thresholds = DecisionThresholds.from_config(config)
        self.multi_label = config.problem_type == "multi_label_classification"
        self.thresholds.check_applies_to(config.problem_type, config.num_labels)
        task_heads = getattr(config, "task_heads", None)
        self.task_heads = task_heads() if callable(task_heads) else None
        # The model's forward arguments, read once; `None` when it takes **kwargs (then nothing is filtered).
        parameters = inspect.signature(self.model.forward).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        self._forward_names = None if takes_any else frozenset(parameters)
        # Models that read a second input (the author's bio) say so in their forward signature and config.
        self.reads_bio = "bio_input_ids" in parameters and bool(getattr(config, "use_bio", False))
        # ... and models that pool bios apart (`encode_bios`) take the pooled vectors, computed once per distinct bio.
        self._pools_bios = (
            self.reads_bio and "bio_embeds" in parameters and callable(getattr(self.model, "encode_bios", None))
        )
        self._pad_id = getattr(self.tokenizer, "pad_token_id", None) or 0
        self._warned_langs: set = set()
        # The precision the thresholds were tuned at, and what the others did to them on the author's dev set.
        self.precision_record = PrecisionRecord.from_dict({key: getattr(config, key, None) for key in PRECISION_KEYS})
        self._precision_checked: Any = None  # the model object whose precision was last compared
        self._warned_precisions: set = set()
        # A fast tokenizer's truncation and padding are settings of its one Rust tokenizer: each call sets them, then
        # encodes. One pipeline shared between threads (a web server) would let a call encode with another's
        # settings, so every tokenizer call of this pipeline holds this lock (cheap next to the forward pass).
        self._tokenizer_lock = threading.Lock()
        if self._configured():  # `pipeline(..., top_k=..., batch_size=...)`: checked as at call time
            self._check_counts(kwargs)

    def check_model_type(self, supported_models):
        if getattr(self.model.config, "model_type", None) in _HUBHEADS_MODEL_TYPES:
            return  # registered sequence classifiers, only missing from transformers' static list of names
        super().check_model_type(supported_models)

    def _sanitize_parameters(self, threshold=None, threshold_mode=None, lang=None, **kwargs):
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(**kwargs)
        if threshold is not None:
            threshold = validate_threshold(threshold, "threshold")
            config = self.model.config
            DecisionThresholds(best_threshold_global=threshold).check_applies_to(
                config.problem_type, config.num_labels, source="the `threshold` argument"
            )
            postprocess_params["threshold"] = threshold
        if threshold_mode is not None:
            if threshold_mode not in THRESHOLD_MODES:
                raise PipelineInputError(
                    f"`threshold_mode` must be one of {list(THRESHOLD_MODES)}, got {threshold_mode!r}."
                )
            postprocess_params["threshold_mode"] = threshold_mode
        if lang is not None:
            if not isinstance(lang, str):
                raise PipelineInputError(f"`lang` given when building the pipeline must be one string, got {lang!r}.")
            preprocess_params["lang"] = lang
        return preprocess_params, forward_params, postprocess_params

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # as TextClassificationPipeline
        """Classify the text(s) given as inputs.

        Args:
            inputs (`str`, `dict`, or a list, generator or dataset of those):
                One or several texts to classify; a dict `{"text": ..., "text_pair": ...}` for a text pair, which may
                also carry `"lang"` and `"bio"`.
            top_k (`int`, *optional*, defaults to `1`):
                How many results to return (as in `TextClassificationPipeline`; for a multi-label model, a cap on the
                label set).
            function_to_apply (`str`, *optional*):
                `"sigmoid"`, `"softmax"` or `"none"`, as in `TextClassificationPipeline`; thresholded decisions
                accept only the function their thresholds compare.
            lang (`str` or `list[str]`, *optional*):
                Language code of the inputs, which picks the per-language threshold.
            bio (`str` or `list[str]`, *optional*):
                The authors' profile bios, for a model that reads one.
            threshold (`float`, *optional*):
                Overrides every configured threshold for this call.
            threshold_mode (`str`, *optional*, defaults to `"auto"`):
                `"auto"`, `"default"`, `"global"` or `"by_lang"`.

        A model that configures nothing, called without `lang`, `bio`, `threshold` or `threshold_mode`, goes through
        the stock `TextClassificationPipeline.__call__` unchanged (inputs too long for the model are truncated).
        """
        lang = kwargs.pop("lang", None)
        bio = kwargs.pop("bio", None)
        own_arguments = (
            lang is not None
            or bio is not None
            or any(kwargs.get(name) is not None for name in ("threshold", "threshold_mode"))
        )
        if not (own_arguments or self._configured()):
            return super().__call__(inputs, **kwargs)  # the stock input handling and output shapes, exactly
        self._check_counts(kwargs)
        self._check_precision()
        if isinstance(inputs, (str, dict)):
            for name, value in (("lang", lang), ("bio", bio)):
                if isinstance(value, (list, tuple)):
                    raise PipelineInputError(f"`{name}` is a list but a single input was given; pass one value.")
            items: Any = self._as_item(inputs, lang, bio)
        elif isinstance(inputs, (list, tuple)):
            langs, bios = _aligned(lang, "lang", len(inputs)), _aligned(bio, "bio", len(inputs))
            items = [self._as_item(x, item_lang, item_bio) for x, item_lang, item_bio in zip(inputs, langs, bios)]
        elif self._streamable(inputs):
            # Generators, iterators, datasets (e.g. KeyDataset): streamed, each element checked as it comes.
            if isinstance(lang, (list, tuple)) or isinstance(bio, (list, tuple)):
                raise PipelineInputError(
                    "`lang` and `bio` lists cannot be aligned with a generator; put them in dict inputs."
                )
            elements = inputs if isinstance(inputs, Iterable) else (inputs[i] for i in range(len(inputs)))
            items = (self._as_item(x, lang, bio) for x in elements)
        else:
            raise PipelineInputError(
                f"Inputs must be a string, a dict with a 'text' key, or a list or generator of those; "
                f"got {type(inputs).__name__}."
            )
        if isinstance(items, list) and not items:
            return []
        # A configured model's list is tokenized in batched calls, each input's result kept for its `preprocess`.
        lengths = self._encode_together(items, kwargs) if isinstance(items, list) and self._configured() else None
        batch_size = kwargs.get("batch_size", self._batch_size) or 1
        if isinstance(items, list) and batch_size > 1 and len(items) > batch_size and self._configured():
            # Length-sorted batches pad less; results come back in input order. A model that configures nothing
            # keeps the stock order, so its output stays identical to the stock pipeline's.
            if lengths is None:
                lengths = self._token_lengths(items)
            order = sorted(range(len(items)), key=lambda i: self._batching_key(items[i], lengths[i]))
            ordered = super(TextClassificationPipeline, self).__call__([items[i] for i in order], **kwargs)
            result: Any = [None] * len(items)
            for position, index in enumerate(order):
                result[index] = ordered[position]
        else:
            result = super(TextClassificationPipeline, self).__call__(items, **kwargs)
        # Same shapes as the stock pipeline, which wraps a single string's result in a list unless `top_k` is given;
        # a multi-task result is one dict per input whatever `top_k`, a multi-label result one list per input.
        if isinstance(inputs, str) and not self.multi_label and ("top_k" not in kwargs or self.task_heads):
            return [result]
        return result

    def _check_precision(self) -> None:
        """Warn once per precision when the model runs at another precision than its thresholds were tuned at
        (`pipeline(..., dtype=torch.bfloat16)`, a model quantized to dynamic int8), with what that precision did to
        the tuned decisions on the author's dev set."""
        if self.model is self._precision_checked or not self.thresholds.configured:
            return
        self._precision_checked = self.model
        running = running_precision(self.model)
        message = self.precision_record.mismatch_warning(running)
        if message is not None and running not in self._warned_precisions:
            self._warned_precisions.add(running)
            warnings.warn(message, PrecisionWarning, stacklevel=3)

    @staticmethod
    def _check_counts(kwargs: dict) -> None:
        """`top_k` and `batch_size` of a configured model: a positive integer or `None`, where the stock pipeline
        drops the last label (`top_k=-1`), ignores the value (`1.5`, `"2"`) or fails inside torch's DataLoader
        (`batch_size="4"`)."""
        for name, meaning in (("top_k", "None for every label"), ("batch_size", "None for the pipeline's own")):
            value = kwargs.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise PipelineInputError(f"`{name}` must be a positive integer or {meaning}, got {value!r}.")

    def _token_lengths(self, items: list) -> list[int]:
        """Each input's token count, from one batched call of the (fast) tokenizer: what padding depends on."""
        texts = [item["text"] for item in items]
        if any(item.get("text_pair") for item in items):
            return [len(text) + len(item.get("text_pair") or "") for text, item in zip(texts, items)]
        return [len(ids) for ids in self._encode(texts, add_special_tokens=False)["input_ids"]]

    def _encode(self, text: Any, **tokenizer_kwargs: Any) -> Any:
        """One call of the tokenizer, under the tokenizer lock."""
        tokenizer: Any = self.tokenizer
        with self._tokenizer_lock:
            return tokenizer(text, **tokenizer_kwargs)

    def _encode_together(self, items: list, kwargs: dict) -> Optional[list[int]]:
        """Tokenize a list's texts in one tokenizer call and its distinct bios in one more, set each input's
        `encoding` to exactly what its own `preprocess` would tokenize, and return the inputs' token counts.

        Only where the batched call is the per-input one: no tokenizer arguments (in the call or the pipeline), so
        the one-pass truncation at the model's length applies to every input, and a text pair on every input or on
        none. Otherwise nothing is set and `None` is returned: `preprocess` tokenizes each input itself."""
        preprocess_params = self._preprocess_params_of(kwargs)
        default_lang = preprocess_params.pop("lang", None)
        one_pass = self._one_pass_kwargs(preprocess_params)
        pairs = [item.get("text_pair") for item in items]
        # A single input's empty pair is no pair to the tokenizer, but a pair in a batched call: those go one by one.
        every_pair = all(isinstance(pair, str) and pair for pair in pairs)
        if preprocess_params or one_pass is None or not (every_pair or all(pair is None for pair in pairs)):
            return None
        texts = [self._model_text(item["text"], item.get("lang") or default_lang) for item in items]
        encoded = self._encode(texts, text_pair=pairs if every_pair else None, **one_pass)
        batch_size = kwargs.get("batch_size", self._batch_size) or 1
        bio_inputs = self._list_bio_inputs(items, batch_size) if self.reads_bio else [{}] * len(items)
        for index, (item, bio) in enumerate(zip(items, bio_inputs)):
            item.encoding = {**_row(encoded, index), **bio}
        return [len(ids) for ids in encoded["input_ids"]]

    def _preprocess_params_of(self, kwargs: dict) -> dict:
        """The keyword arguments `preprocess` gets in a call with `kwargs`: the pipeline's, updated with the call's
        (as the base `Pipeline.__call__` merges them)."""
        call_kwargs = {key: value for key, value in kwargs.items() if key not in ("batch_size", "num_workers")}
        return {**self._preprocess_params, **self._sanitize_parameters(**call_kwargs)[0]}

    def _list_bio_inputs(self, items: list, batch_size: int) -> list[dict[str, Any]]:
        """Each input's bio inputs from one tokenizer call over the distinct bios (the inputs of one author share
        their tensors): the bio's pooled vector (`bio_embeds`, `has_bio`), each distinct bio encoded once in
        length-sorted batches of `batch_size` or taken from the bio cache, where the model pools bios apart and the
        cache is on; otherwise its token ids, as `_bio_inputs` gives them."""
        prepared = [self.model.config.prepare_bio(item.get("bio")) for item in items]
        distinct = list(dict.fromkeys(bio for bio in prepared if bio is not None))
        by_bio: dict[Optional[str], dict[str, Any]] = {None: self._no_bio_inputs()}
        if distinct:
            encoded = self._encode(distinct, **self._bio_tokenizer_kwargs({}))
            state = self._bio_state()
            if state is None:
                by_bio.update((bio, _bio_keys(_row(encoded, index))) for index, bio in enumerate(distinct))
            else:
                keys = [tuple(ids) for ids in encoded["input_ids"]]
                # Kept on the CPU, where the pipeline collates batches (in DataLoader workers too) and then moves them.
                vectors = torch.stack(self._bio_vectors(keys, batch_size, state)).cpu()  # (distinct, hidden)
                by_bio = {None: {"bio_embeds": torch.zeros_like(vectors[:1]), "has_bio": torch.tensor([False])}}
                has_bio = torch.tensor([True])
                by_bio.update(
                    (bio, {"bio_embeds": vectors[index : index + 1], "has_bio": has_bio})
                    for index, bio in enumerate(distinct)
                )
        return [by_bio[bio] for bio in prepared]

    def _bio_state(self) -> Optional[tuple]:
        """What a cached bio vector depends on besides the bio's tokens, or `None` when bios are not cached (the model
        pools no bios apart, the cache is off, the model is in training mode, where each row draws its own dropout,
        or its weights keep no version counter because they were made under `torch.inference_mode`).

        The state is the model object, its dtype and device, its pooling mode, and each weight's and buffer's
        storage address (a new one for every converted, moved or replaced weight) and in-place version counter (which
        an optimizer step, `load_state_dict` or any in-place write moves). A write through `.data` moves no version
        counter: after one, call `clf.bio_cache.clear()`."""
        model: Any = self.model
        if not self._pools_bios or self.bio_cache.maxsize == 0 or model.training:
            return None
        try:
            tensors = tuple((t.data_ptr(), t._version) for t in itertools.chain(model.parameters(), model.buffers()))
        except RuntimeError:  # "Inference tensors do not track version counter."
            return None
        return (weakref.ref(model), model.dtype, model.device, getattr(model.config, "pooling", None), tensors)

    def _bio_vectors(self, keys: list[tuple], batch_size: int, state: tuple) -> list[torch.Tensor]:
        """The pooled vector (`(hidden,)`, at the model's dtype and device) of each bio given by its token ids: from
        the bio cache, the others encoded by the model's `encode_bios` in length-sorted batches and then cached."""
        vectors = self.bio_cache.lookup(keys, state)
        missing = sorted((index for index, vector in enumerate(vectors) if vector is None), key=lambda i: len(keys[i]))
        fresh = []
        model: Any = self.model
        with torch.inference_mode():
            for start in range(0, len(missing), batch_size):
                chunk = missing[start : start + batch_size]
                ids = torch.full((len(chunk), max(len(keys[i]) for i in chunk)), self._pad_id, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for row, index in enumerate(chunk):  # padded on the right: each bio at the positions it has alone
                    ids[row, : len(keys[index])] = torch.tensor(keys[index])
                    mask[row, : len(keys[index])] = 1
                pooled = model.encode_bios(ids.to(self.device), mask.to(self.device))  # (chunk, hidden)
                for index, vector in zip(chunk, pooled):
                    vectors[index] = vector.clone()  # not a view that would keep the whole batch alive
                    fresh.append((keys[index], vectors[index]))
        self.bio_cache.store(fresh, state)
        return vectors  # type: ignore[return-value]  # every None was filled

    def _cached_bio_embeds(self, model_inputs: dict) -> None:
        """Replace a batch's bio ids by their pooled vectors (`bio_embeds`, `has_bio`) where bios are cached: each
        distinct bio of the batch from the cache or encoded once. Lists come with their vectors from `__call__`;
        this serves single inputs, streams and lists tokenized one by one."""
        state = self._bio_state()
        if state is None:
            return
        has_bio = model_inputs["bio_attention_mask"].sum(dim=-1) > 0  # (batch,)
        if not has_bio.any():
            return
        ids, mask = model_inputs.pop("bio_input_ids"), model_inputs.pop("bio_attention_mask")
        keys = [
            tuple(row[row_mask.bool()].tolist()) if row_has else None
            for row, row_mask, row_has in zip(ids, mask, has_bio.tolist())
        ]
        distinct = list(dict.fromkeys(key for key in keys if key is not None))
        by_key = dict(zip(distinct, self._bio_vectors(distinct, len(distinct), state)))
        no_bio = torch.zeros_like(by_key[distinct[0]])
        model_inputs["bio_embeds"] = torch.stack([no_bio if key is None else by_key[key] for key in keys])
        model_inputs["has_bio"] = has_bio

    def _batching_key(self, item: "_Item", length: int) -> tuple:
        """Sort key of length-sorted batching: posts by length. For a model that reads bios by their ids (not pooled
        apart), one author's posts (same bio) go together first, so each batch encodes few distinct bios."""
        if self.reads_bio and not (item.encoding and "bio_embeds" in item.encoding):
            bio = self.model.config.prepare_bio(item.get("bio")) or ""
            return (len(bio), bio, length)
        return (length,)

    @staticmethod
    def _streamable(inputs: Any) -> bool:
        """An iterable of inputs, or a map-style dataset (`__len__` and `__getitem__`, like torch datasets)."""
        if isinstance(inputs, (bytes, bytearray)):
            return False
        return isinstance(inputs, Iterable) or (hasattr(inputs, "__len__") and hasattr(inputs, "__getitem__"))

    def _configured(self) -> bool:
        """Whether this model uses anything beyond the stock pipeline (thresholds, label sets, heads, bios)."""
        hubheads_model = getattr(self.model.config, "model_type", None) in _HUBHEADS_MODEL_TYPES
        return bool(
            self.multi_label or self.thresholds.configured or self.task_heads or self.reads_bio or hubheads_model
        )

    def get_inference_context(self):
        return torch.inference_mode

    def _as_item(self, item: Any, lang: Any, bio: Any) -> "_Item":
        """One input as the dict `preprocess` reads; strings become `{"text": ...}`. Anything else is a `TypeError`
        here, rather than an error from deep inside the tokenizer."""
        if lang is not None and not isinstance(lang, str):
            raise PipelineInputError(f"`lang` must be a language code string, got {lang!r}.")
        if _is_legacy_pair(item):  # `[["text", "pair"]]` as one element: the stock pipeline's old pair form
            item = {"text": item[0][0], "text_pair": item[0][1]}
        if isinstance(item, str):
            item = {"text": item}
        elif isinstance(item, dict):
            unknown = sorted(set(item) - set(_ITEM_KEYS))
            if "text" not in item or unknown:
                raise PipelineInputError(
                    f"A dict input needs a 'text' key and may have {list(_ITEM_KEYS[1:])}; got keys {sorted(item)}."
                )
            for key in ("text", "text_pair", "lang", "bio"):
                value = item.get(key)
                if key in item and not isinstance(value, str) and not (key != "text" and value is None):
                    raise PipelineInputError(
                        f"The '{key}' of a dict input must be a string, got {type(value).__name__}."
                    )
        else:
            raise PipelineInputError(
                f"Each input must be a string or a dict with a 'text' key, got {type(item).__name__}: {item!r:.80}. "
                'For a text pair, pass {"text": ..., "text_pair": ...}.'
            )
        item = _Item(item)
        if lang is not None:
            item.setdefault("lang", lang)
        if bio is not None:
            item.setdefault("bio", bio)
        for key, value in item.items():
            surrogate = _LONE_SURROGATE.search(value) if isinstance(value, str) else None
            if surrogate:
                raise PipelineInputError(
                    f"The {key} {value!r:.60} holds a lone surrogate ({surrogate.group()!r} at character "
                    f"{surrogate.start()}), which is not valid Unicode text and cannot be tokenized. It comes from "
                    "decoding bytes with errors='surrogateescape' or from a broken UTF-16 pair; decode the bytes with "
                    "errors='replace' (or fix the source)."
                )
        return item

    def _input_limits(self) -> tuple[Optional[int], Optional[int]]:
        """(the longest input the model's position embeddings accept, the length inputs are truncated to by default).

        The default is the model's length; a configured model also stops at its token budget (`max_seq_length` of
        the hubheads architectures) and at the tokenizer's `model_max_length`, where the stock pipeline reads on."""
        encoder_config = getattr(self.model.config, "backbone_config", None) or self.model.config
        positions = getattr(encoder_config, "max_position_embeddings", None)
        if positions is not None and getattr(encoder_config, "model_type", None) in _POSITION_OFFSET_MODEL_TYPES:
            positions -= (getattr(encoder_config, "pad_token_id", None) or 0) + 1
        default = positions
        if self._configured():
            tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
            budgets = (getattr(self.model.config, "max_seq_length", None), tokenizer_limit)
            for budget in budgets:
                if isinstance(budget, int) and budget < 1_000_000:
                    default = budget if default is None else min(default, budget)
        return positions, default

    def preprocess(self, inputs, lang=None, **tokenizer_kwargs) -> dict[str, Any]:  # type: ignore[override]
        bio, encoding = None, None
        if isinstance(inputs, _Item):  # an input checked by `__call__`; anything else is passed on as the stock one is
            encoding = inputs.encoding
            inputs = dict(inputs)
            lang = inputs.pop("lang", None) or lang
            bio = inputs.pop("bio", None)
            if bio is not None and not self.reads_bio:
                raise PipelineInputError(
                    f"A `bio` was given, but {type(self.model).__name__} reads no author bio; drop the `bio` input."
                )
            if encoding is None:
                inputs["text"] = self._model_text(inputs["text"], lang)
        if encoding is not None:  # tokenized by `__call__` with the rest of its list, exactly as below
            model_inputs: Any = BatchEncoding(encoding)
        else:
            model_inputs = self._tokenize(inputs, tokenizer_kwargs)
            if self.reads_bio:
                model_inputs.update(self._bio_inputs(bio, tokenizer_kwargs))
        model_inputs[_LANG_KEY] = lang
        return model_inputs

    def _model_text(self, text: str, lang: Optional[str]) -> str:
        """The text as the model reads it: the config's `prepare_text` (its own normalisation and language token,
        exactly as in training) when it has one."""
        prepare_text = getattr(self.model.config, "prepare_text", None)
        return prepare_text(text, lang) if callable(prepare_text) else text

    def _one_pass_kwargs(self, tokenizer_kwargs: dict) -> Optional[dict]:
        """The caller's tokenizer arguments with truncation at the model's default length, when the caller set none
        of `truncation`, `max_length` and `padding`: one pass, since truncating at the model's length leaves every
        input that fits exactly as it was. `None` otherwise, or when the model has no length."""
        default = self._input_limits()[1]
        if default is None or any(
            tokenizer_kwargs.get(key) is not None for key in ("truncation", "max_length", "padding")
        ):
            return None
        return {**tokenizer_kwargs, "truncation": True, "max_length": default}

    def _tokenize(self, inputs: Any, tokenizer_kwargs: dict) -> dict[str, Any]:
        """The stock tokenization, except that an input longer than the model accepts is truncated to its length
        (the stock pipeline crashes on it) unless the caller asked for `truncation=False`."""
        truncation = tokenizer_kwargs.get("truncation")
        if truncation in (False, "do_not_truncate"):
            return self._stock_preprocess(inputs, tokenizer_kwargs)
        one_pass = self._one_pass_kwargs(tokenizer_kwargs)
        if one_pass is not None:
            return self._stock_preprocess(inputs, one_pass)
        positions = self._input_limits()[0]
        encoded = self._stock_preprocess(inputs, tokenizer_kwargs)
        input_ids: Any = encoded["input_ids"]  # a tensor: the stock preprocess asks for return_tensors="pt"
        if positions is None or input_ids.shape[-1] <= positions:
            return encoded
        retry = {**tokenizer_kwargs, "truncation": truncation or True, "max_length": positions}
        return self._stock_preprocess(inputs, retry)

    def _stock_preprocess(self, inputs: Any, tokenizer_kwargs: dict) -> dict[str, Any]:
        """`TextClassificationPipeline.preprocess`, the tokenizer call, under the tokenizer lock."""
        with self._tokenizer_lock:
            return super().preprocess(inputs, **tokenizer_kwargs)

    def _bio_inputs(self, bio: Any, tokenizer_kwargs: dict) -> dict[str, Any]:
        """The bio's token ids and mask; no bio (missing, empty, blank) is one padding token with a zero mask."""
        prepared = self.model.config.prepare_bio(bio)
        if prepared is None:
            return self._no_bio_inputs()
        return _bio_keys(self._encode(prepared, return_tensors="pt", **self._bio_tokenizer_kwargs(tokenizer_kwargs)))

    def _no_bio_inputs(self) -> dict[str, torch.Tensor]:
        """The bio inputs of an input without a bio: one padding token with a zero mask."""
        return {
            "bio_input_ids": torch.tensor([[self._pad_id]]),
            "bio_attention_mask": torch.zeros(1, 1, dtype=torch.long),
        }

    def _bio_tokenizer_kwargs(self, tokenizer_kwargs: dict) -> dict[str, Any]:
        """How a bio is tokenized: truncated at the caller's `max_length` or the model's default length, and never
        past the model's positions (unless the caller asked for `truncation=False`), without token type ids."""
        positions, default = self._input_limits()
        limit = tokenizer_kwargs.get("max_length") or default
        if limit is not None and positions is not None:
            limit = min(limit, positions)  # as the text is: a longer bio would index past the position embeddings
        truncation = tokenizer_kwargs.get("truncation")
        truncation = (True if truncation is None else truncation) and limit is not None
        return {"return_token_type_ids": False, "truncation": truncation, "max_length": limit}

    def _forward(self, model_inputs):
        lang = model_inputs.pop(_LANG_KEY, None)
        if "bio_input_ids" in model_inputs:
            # The batch collation pads unknown keys with 0; put the real padding id where the bio mask is 0.
            mask = model_inputs["bio_attention_mask"] == 0
            model_inputs["bio_input_ids"] = model_inputs["bio_input_ids"].masked_fill(mask, self._pad_id)
            self._cached_bio_embeds(model_inputs)
        if self._forward_names is not None:
            # A generic tokenizer may emit inputs the model does not take (token_type_ids for DistilBERT).
            for key in [key for key in model_inputs if key not in self._forward_names]:
                model_inputs.pop(key)
        outputs = super()._forward(model_inputs)
        # `logits` first: the pipeline's un-batching reads the batch size from the first entry.
        result = {"logits": outputs["logits"]}
        result.update((key, value) for key, value in outputs.items() if key != "logits")
        result[_LANG_KEY] = lang
        return result

    def postprocess(
        self, model_outputs, function_to_apply=None, top_k=1, _legacy=True, threshold=None, threshold_mode=None
    ):
        lang = model_outputs.get(_LANG_KEY)
        if self.task_heads:
            self._check_function(function_to_apply)
            return self._multi_task(model_outputs, lang, threshold, threshold_mode or "auto", top_k, _legacy)
        if not (self.multi_label or self.thresholds.configured or threshold is not None or threshold_mode is not None):
            return super().postprocess(
                model_outputs, function_to_apply=function_to_apply, top_k=top_k, _legacy=_legacy
            )
        mode = threshold_mode or "auto"
        self._check_function(function_to_apply)
        scores = self._scores(model_outputs["logits"][0])
        if self.multi_label:
            return self._label_set(scores, lang, threshold, mode, None if _legacy else top_k)
        return self._binary_decision(scores, lang, threshold, mode, top_k, _legacy)

    def _multi_task(self, model_outputs, lang, threshold, mode, top_k, _legacy):
        """The primary head's (thresholded) decision at the top level, and each head's prediction under `tasks`."""
        tasks = {}
        result: dict = {}
        for index, (task, (output_key, label_names)) in enumerate(self.task_heads.items()):
            scores = torch.softmax(model_outputs[output_key][0].float(), dim=-1).tolist()
            if index == 0 and len(scores) == 2:
                ranked = self._binary_decision(scores, lang, threshold, mode, None, False, label_names)
            else:
                ranked = [{"label": label_names[i], "score": scores[i]} for i in range(len(scores))]
                ranked.sort(key=lambda item: -item["score"])
            if index == 0:
                result = dict(ranked[0])
            head = [{"label": r["label"], "score": r["score"]} for r in ranked]
            tasks[task] = head[0] if _legacy else (head if top_k is None else head[:top_k])
        result["tasks"] = tasks
        return result

    def _check_function(self, function_to_apply) -> None:
        """Thresholds are probabilities: a decision always reads softmax (single-label) or sigmoid (multi-label)."""
        name = getattr(function_to_apply, "value", function_to_apply)
        expected = "sigmoid" if self.multi_label else "softmax"
        if name is not None and name != expected:
            raise PipelineInputError(
                f"`function_to_apply={name!r}` cannot be combined with thresholded decisions, which compare "
                f"{expected} probabilities with the thresholds; drop the argument."
            )

    def _scores(self, logits: torch.Tensor) -> list[float]:
        """Probabilities from one row of logits: sigmoid for multi-label, softmax otherwise."""
        logits = logits.float()
        return (torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)).tolist()

    def _threshold_for(self, lang: Optional[str], threshold: Optional[float], mode: str) -> float:
        if threshold is not None:
            return threshold
        known = self.thresholds.thresholds_by_lang
        if mode == "auto" and lang is not None and known and lang.lower() not in known:
            if lang.lower() not in self._warned_langs:
                self._warned_langs.add(lang.lower())
                logger.warning(
                    f"No threshold for language {lang!r} (known: {sorted(known)}); using the global threshold."
                )
        return self.thresholds.resolve(lang, mode)[0]

    def _binary_decision(self, scores, lang, threshold, mode, top_k, _legacy, label_names=None):
        """Label 1 when its probability reaches the threshold; `score` is the probability of the returned label."""
        cutoff = self._threshold_for(lang, threshold, mode)
        index = 1 if scores[1] >= cutoff else 0
        id2label = label_names or self.model.config.id2label
        decided = {"label": id2label[index], "score": scores[index], "threshold": cutoff}
        if lang is not None:
            decided["lang"] = lang
        if top_k == 1 and _legacy:
            return decided
        ranked = [decided, {"label": id2label[1 - index], "score": scores[1 - index]}]
        return ranked if top_k is None else ranked[:top_k]

    def _label_set(self, scores, lang, threshold, mode, top_k):
        """Every label whose score reaches its own threshold, highest score first (ties keep label order)."""
        id2label = self.model.config.id2label
        if threshold is None:
            self._threshold_for(lang, None, mode)  # validates the mode and warns once for an unknown language
        chosen = []
        for index in sorted(range(len(scores)), key=lambda i: -scores[i]):
            label = id2label[index]
            cutoff = threshold if threshold is not None else self.thresholds.resolve_label(label, lang, mode)
            if scores[index] >= cutoff:
                chosen.append({"label": label, "score": scores[index]})
        return chosen if top_k is None else chosen[:top_k]


__all__ = [
    "BioVectorCache",
    "HubheadsTextClassificationPipeline",
    "PipelineInputError",
    "PrecisionWarning",
    "running_precision",
]

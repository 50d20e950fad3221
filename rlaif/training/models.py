"""Model loading and building.

Every loader takes a hub id or a local path, so the same code serves the tiny CPU policy built
here and Qwen/Llama-class models on GPUs. Heavy imports happen inside functions: the CLI must
stay fast for commands that load no model.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rlaif.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Plain-text dialogue format for policies whose tokenizer has no chat template (the tiny default).
USER_PREFIX = "User: "
ASSISTANT_PREFIX = "\nAssistant:"
REFERENCE_FILE = "reference.json"  # a policy directory may just point at a hub id or path
ADAPTER_CONFIG = "adapter_config.json"  # a policy directory may hold LoRA adapters only (peft)


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_model_source(name: str) -> str:
    """A local path, a file a package ships (package:MODULE/PATH), a Python package that ships a model
    (get_model_path()), or a hub id, in that order."""
    if name.startswith("package:"):
        from rlaif.training.model_refs import package_path

        return str(package_path(name, "model"))
    if Path(name).exists():
        return str(Path(name))
    module_name = name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    if module is not None and hasattr(module, "get_model_path"):
        return str(module.get_model_path())
    if "/" not in name:
        raise InputError(
            f"model {name!r}: not a local path, not an installed package that ships a model, "
            "and not a hub id (owner/name)"
        )
    return name  # hub id: transformers resolves it (offline runs need it in the local cache)


def resolve_policy(path: Path | str) -> str:
    """A policy directory holds weights, or a reference.json naming a hub id or path."""
    ref = Path(path) / REFERENCE_FILE
    if ref.exists():
        return json.loads(ref.read_text(encoding="utf-8"))["source"]
    return str(path)


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model")


def check_model_dir(path: Path | str, key: str) -> None:
    """A local model directory checked without loading it (no torch, no weights read): what `rlaif check` runs
    for every model setting that names a folder. A policy folder may also hold a reference.json or LoRA
    adapters only. Every problem is one InputError naming the setting and the file."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{key}: {str(path)!r} is not a folder (a model directory)")
    if (path / REFERENCE_FILE).exists():
        source = _json_object(path / REFERENCE_FILE, key).get("source")
        if not isinstance(source, str) or not source.strip():
            raise InputError(f"{path / REFERENCE_FILE}: field 'source' must name a hub id or path ({key})")
        return
    if (path / ADAPTER_CONFIG).exists():
        base = _json_object(path / ADAPTER_CONFIG, key).get("base_model_name_or_path")
        if not isinstance(base, str) or not base.strip():
            raise InputError(f"{path / ADAPTER_CONFIG}: field 'base_model_name_or_path' names no base model ({key})")
        _check_weights(path, ADAPTER_WEIGHTS, key)
    else:
        model_type = _json_object(path / "config.json", key).get("model_type")
        if not isinstance(model_type, str) or not model_type:
            raise InputError(f"{path / 'config.json'}: field 'model_type' missing ({key})")
        _check_weights(path, WEIGHT_FILES, key)
    if not any((path / name).exists() for name in TOKENIZER_FILES):
        raise InputError(f"{path}: no tokenizer ({', '.join(TOKENIZER_FILES)}) ({key})")


def _json_object(path: Path, key: str) -> dict:
    from rlaif.data.io import read_text

    text = read_text(path, f"{key}: a model directory's JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: not valid JSON ({err.msg}, column {err.colno}) ({key})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object ({key})")
    return data


def _check_weights(path: Path, names: tuple[str, ...], key: str) -> None:
    present = [path / name for name in names if (path / name).is_file()]
    if not present:
        raise InputError(f"{path}: no weights ({', '.join(names)}) ({key})")
    for file in present:
        if file.name.endswith(".index.json"):
            shards = _json_object(file, key).get("weight_map")
            if not isinstance(shards, dict) or not shards:
                raise InputError(f"{file}: field 'weight_map' missing or empty ({key})")
            for shard in sorted({str(s) for s in shards.values()}):
                if not (path / shard).is_file():
                    raise InputError(f"{file}: names the shard {shard!r}, which is not in {path} ({key})")
                if shard.endswith(".safetensors"):
                    check_safetensors(path / shard, key)
        elif file.suffix == ".safetensors":
            check_safetensors(file, key)


def check_safetensors(file: Path, key: str) -> None:
    """A safetensors file is an 8-byte header length, a JSON header and the tensors' bytes; a file cut short or
    padded does not hold the bytes its header describes (checked from the header alone, no tensor read)."""
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(8)
        header_length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if header_length < 2 or 8 + header_length > size:
            raise InputError(f"{file}: not a safetensors file, or cut short (its header does not fit in "
                             f"{size} bytes) ({key})")
        raw = handle.read(header_length)
    try:
        header = json.loads(raw.decode("utf-8"))
        ends = [int(t["data_offsets"][1]) for name, t in header.items() if name != "__metadata__"]
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise InputError(f"{file}: the safetensors header is damaged ({key})") from None
    held = size - 8 - header_length
    if max(ends, default=0) != held:
        raise InputError(f"{file}: the header describes {max(ends, default=0)} bytes of tensors, the file holds "
                         f"{held} (cut short or damaged) ({key})")


def dtype_for_device():
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_policy(path: Path | str, for_generation: bool = True) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """A policy directory (or any model reference, rlaif/training/model_refs.py): a full model, a GGUF file (de-quantized),
    a reference.json pointing at one, or LoRA adapters only (adapter_config.json), which load on top of the base
    model that their config names and are merged into it, so callers always get a plain model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.training.model_refs import parse_model_ref

    source = resolve_policy(path)
    try:
        ref = parse_model_ref(source, "policy")
    except InputError as err:
        raise InputError(f"policy {source!r}: cannot be loaded ({err})") from None
    if ref.kind == "registry":
        raise InputError(f"policy {source!r}: a registered version is copied out by bootstrap, not loaded by name")
    if (Path(ref.source) / ADAPTER_CONFIG).exists():
        return _load_adapter_policy(Path(ref.source), for_generation)
    gguf = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.source, **gguf)
        model = AutoModelForCausalLM.from_pretrained(ref.source, dtype=dtype_for_device(), **gguf)
    except (OSError, ValueError) as err:
        raise InputError(f"policy {source!r}: cannot be loaded ({err})") from None
    if ref.gguf_file:
        _forget_gguf(model)
    check_tokenizer_fits(source, model, tokenizer)
    return _ready(model, tokenizer, for_generation)


def _forget_gguf(model) -> None:
    """transformers de-quantizes a GGUF file into plain float tensors yet keeps the model marked as quantized,
    which refuses save_pretrained: the marks go, so the model saves, trains and merges as any other."""
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def check_tokenizer_fits(source: str, model, tokenizer) -> None:
    """A tokenizer with ids past the model's embedding table fails deep inside training with an index error;
    say so before training starts."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise InputError(f"policy {source!r}: the tokenizer does not fit the model: it has {len(tokenizer)} tokens, "
                         f"the model's embedding table {rows} rows (a tokenizer from another model?)")


def _load_adapter_policy(source: Path, for_generation: bool):
    """LoRA adapters saved alone: the base they name (a path relative to the project root, or a hub id),
    with the adapters merged in. The tokenizer is the one saved beside the adapters."""
    from transformers import AutoTokenizer

    config = json.loads((source / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise InputError(f"policy {str(source)!r}: {ADAPTER_CONFIG} names no base model (base_model_name_or_path)")
    if (Path(base) / ADAPTER_CONFIG).exists():
        raise InputError(f"policy {str(source)!r}: its base {base!r} is itself an adapter; stacked adapters are not supported")
    try:
        model, _ = load_policy(base, for_generation=False)
    except InputError as err:
        raise InputError(f"policy {str(source)!r} holds LoRA adapters only, and their base model cannot be loaded: {err}") from None
    try:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(source)).merge_and_unload()
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"policy {str(source)!r}: LoRA adapters cannot be loaded on {base!r} ({err})") from None
    return _ready(model, tokenizer, for_generation)


def _ready(model, tokenizer, for_generation: bool):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if for_generation:
        tokenizer.padding_side = "left"  # decoder-only batches generate from aligned ends
    model.to(device())
    return model, tokenizer


def format_prompt(tokenizer: "PreTrainedTokenizerBase", prompt: str) -> str:
    """The text a policy continues: its chat template when it has one, else the plain dialogue format."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return f"{USER_PREFIX}{prompt}{ASSISTANT_PREFIX}"


def format_completion(tokenizer: "PreTrainedTokenizerBase", response: str) -> str:
    return response if getattr(tokenizer, "chat_template", None) else f" {response}"


def build_tokenizer(texts: list[str], vocab_size: int) -> "PreTrainedTokenizerBase":
    """A byte-level BPE tokenizer trained on the project's own dialogue text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>"]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>", model_max_length=512
    )


def build_tiny_llama(tokenizer: "PreTrainedTokenizerBase", hidden: int, layers: int, heads: int, intermediate: int,
                     max_positions: int) -> "PreTrainedModel":
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def load_encoder(name: str):
    """A sentence encoder (sentence-transformers layout: pooling and normalisation included)."""
    from sentence_transformers import SentenceTransformer

    source = resolve_model_source(name)
    try:
        return SentenceTransformer(source, device=device())
    except OSError as err:
        raise InputError(f"encoder {source!r}: cannot be loaded ({err})") from None


def save_tiny_llama(texts: list[str], path: Path, vocab_size: int, **sizes) -> Path:
    """A tokenizer trained on `texts` and a tiny Llama of `sizes` (see `build_tiny_llama`), saved at `path`."""
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    build_tiny_llama(tokenizer, **sizes).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path

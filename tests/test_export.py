"""ONNX export and the torch-free runtime: same codes and audio as torch, same token files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DATA, save_tiny_frame_model
from typer.testing import CliRunner

from codec.audio import load_audio
from codec.cli.app import app
from codec.runtime import OnnxCodec
from codec.zoo import load_model


@pytest.fixture(scope="module", params=["speech16k-mini-v2", "tiny-frame"])
def exported(request, tmp_path_factory):
    """A model (the shipped SEANet by name; the frame-rate backbone, briefly trained, by file) and
    its graphs, exported by the command: `(reference, model, directory)`."""
    reference = request.param
    if reference == "tiny-frame":
        reference = save_tiny_frame_model(tmp_path_factory.mktemp("models") / "tiny-frame.ckpt")
    out = tmp_path_factory.mktemp("onnx") / "graphs"
    result = CliRunner().invoke(app, ["export", reference, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return reference, load_model(reference), out


def test_manifest_describes_the_graphs(exported):
    reference, model, directory = exported
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["model"] == Path(reference).name
    assert manifest["model_hash"] == model.weights_hash()  # the hash token files record
    assert manifest["hop_length"] == 320 and manifest["delay"] == model.delay
    assert manifest["codebook_sizes"] == model.quantizer.codebook_sizes
    assert set(manifest["graphs"]) == {"1", "50"}
    assert manifest["encoder_states"] and all(
        s["shape"][0] == -1 and len(s["shape"]) == 3 for s in manifest["encoder_states"]
    )
    runtime = OnnxCodec(directory)
    if model.entropy is not None:
        assert runtime.entropy.hash == model.entropy.hash
    assert runtime.bitrate(1) == model.bitrate(1) and runtime.delay == model.delay


def _split(x: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    cuts = np.sort(rng.choice(np.arange(1, x.shape[-1]), size=6, replace=False))
    return np.split(x, cuts, axis=-1)


def test_codes_equal_torch_and_audio_within_1e_4_however_chunked(exported):
    _, model, directory = exported
    wav = load_audio(DATA / "speech_fr.flac", 16000)[0]
    stages = sorted({max(1, model.num_stages // 4), model.num_stages})
    with torch.inference_mode():  # offline: the audio of the codes, `delay` samples dropped
        codes = model.encode(torch.from_numpy(wav)[:, None]).numpy()
        audio = {n: model.decode(torch.from_numpy(codes[:, :n])).numpy()[:, 0] for n in stages}
    runtime = OnnxCodec(directory)
    flushed = np.pad(wav, ((0, 0), (0, codes.shape[2] * 320 - wav.shape[1])))  # as files end
    rng = np.random.default_rng(0)
    for _ in range(3):  # several random chunkings of the audio, and of the codes
        with runtime.streaming(batch_size=1) as stream:
            got = np.concatenate([stream.encode(c) for c in _split(flushed, rng)], axis=2)
        assert got.shape == codes.shape and (got == codes).all()
        for n, expected in audio.items():
            with runtime.streaming(batch_size=1) as stream:
                out = np.concatenate([stream.decode(c) for c in _split(codes[:, :n], rng)], 1)
            assert np.abs(out[:, model.delay :] - expected).max() < 1e-4
    with runtime.streaming(batch_size=2) as stream:  # a batch of two streams
        both = stream.encode(np.concatenate([flushed, flushed[:, ::-1].copy()]))
    assert (both[:1] == codes).all()


def test_token_files_cross_backends(exported, tmp_path):
    reference, _, directory = exported
    source = DATA / "speech_fr.flac"
    for backend in ("torch", "onnx"):
        model = ["--model", str(directory if backend == "onnx" else reference)]
        args = ["encode", str(source), "-o", str(tmp_path / f"{backend}.tok"), "-b", "3"]
        result = CliRunner().invoke(app, [*args, "--backend", backend, *model])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "torch.tok").read_bytes() == (tmp_path / "onnx.tok").read_bytes()
    decoded = {}
    for made, read in (("torch", "onnx"), ("onnx", "torch")):
        model = ["--model", str(directory if read == "onnx" else reference)]
        out = tmp_path / f"{made}_by_{read}.wav"
        args = ["decode", str(tmp_path / f"{made}.tok"), "-o", str(out), "--backend", read]
        result = CliRunner().invoke(app, [*args, *model])
        assert result.exit_code == 0, result.output
        decoded[read] = load_audio(out)[0]
    assert np.abs(decoded["onnx"] - decoded["torch"]).max() < 1e-4
    assert decoded["torch"].shape == load_audio(source)[0].shape


def test_the_onnx_backend_does_not_import_torch(exported, tmp_path):
    """The whole `codec encode` + `codec decode` with --backend onnx, in a fresh process."""
    _, _, exported = exported
    script = f"""
import sys
from codec.cli import app
for args in (["encode", "{DATA / "speech_en.flac"}", "-o", "{tmp_path / "x.tok"}"],
             ["decode", "{tmp_path / "x.tok"}", "-o", "{tmp_path / "x.wav"}"]):
    try:
        app([*args, "--backend", "onnx", "--model", "{exported}"])
    except SystemExit as done:
        assert done.code == 0, done.code
assert "torch" not in sys.modules, "torch was imported"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    assert (
        load_audio(tmp_path / "x.wav")[0].shape[1]
        == load_audio(DATA / "speech_en.flac")[0].shape[1]
    )


def test_zoo_models_are_exported_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEC_CACHE", str(tmp_path))
    from codec.zoo import load_onnx, resolve

    first = load_onnx("default")
    assert first.directory.parent == tmp_path / "onnx" and first.name == resolve("default")
    stamp = (first.directory / "manifest.json").stat().st_mtime_ns
    again = load_onnx(resolve("default"))  # the same file behind another name: the same cache
    assert again.directory == first.directory
    assert (again.directory / "manifest.json").stat().st_mtime_ns == stamp
    bad = CliRunner().invoke(app, ["encode", str(DATA / "speech_en.flac"), "--backend", "tpu"])
    assert bad.exit_code == 1 and "--backend must be auto, torch or onnx" in bad.output


def test_the_installed_zoo_codes_with_default_flags_without_torch(tmp_path):
    """`make install` exports the package's models (prepare_runtime); then `codec encode` and
    `codec decode` with no flags run them torch-free and export nothing more."""
    from codec.zoo import MODELS

    cache = tmp_path / "cache"
    env = os.environ | {"CODEC_CACHE": str(cache)}
    subprocess.run(
        [sys.executable, "-c", "from codec.zoo import prepare_runtime; prepare_runtime()"],
        env=env, check=True,
    )  # fmt: skip
    exported = sorted((cache / "onnx").iterdir())
    assert [d.name.rsplit("-", 1)[0] for d in exported] == sorted(MODELS)
    script = f"""
import sys
from codec.cli import app
for args in (["encode", "{DATA / "speech_en.flac"}", "-o", "{tmp_path / "x.tok"}"],
             ["decode", "{tmp_path / "x.tok"}", "-o", "{tmp_path / "x.wav"}"]):
    try:
        app(args)
    except SystemExit as done:
        assert done.code == 0, done.code
assert "torch" not in sys.modules, "torch was imported"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    assert sorted((cache / "onnx").iterdir()) == exported


def test_a_model_the_runtime_cannot_run_falls_back_to_torch_by_default(tmp_path, monkeypatch):
    """With default flags a model whose export fails is coded with torch, one note saying so;
    with --backend onnx it is one error line."""
    monkeypatch.setenv("CODEC_CACHE", str(tmp_path / "cache"))
    model = save_tiny_frame_model(tmp_path / "tiny.ckpt")

    def unexportable(*args, **kwargs):
        raise RuntimeError("an operator ONNX lacks")

    monkeypatch.setattr("codec.export.export_model", unexportable)
    source, out = str(DATA / "speech_en.flac"), str(tmp_path / "x.tok")
    done = CliRunner().invoke(app, ["encode", source, "-o", out, "--model", model])
    assert done.exit_code == 0, done.output
    assert "note: " in done.output and "runs with torch" in done.output
    assert "an operator ONNX lacks" in done.output and (tmp_path / "x.tok").stat().st_size > 0
    refused = CliRunner().invoke(app, ["encode", source, "-o", out, "--force", "--model", model,
                                       "--backend", "onnx"])  # fmt: skip
    assert refused.exit_code == 1
    assert refused.output.startswith("error: --backend onnx cannot run")
    assert "ONNX lacks" in refused.output

"""A VP codec end to end: train, compile codebooks (library and CLI), save, load, encode."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import codec
from codec.audio import save_audio
from codec.cli.app import app

VP_TINY = {
    "model.quantizer.kind": "vp",
    "model.quantizer.dim": 2,
    "model.quantizer.codebook_size": 16,
}


def trained_vp_model(steps: int = 3) -> codec.CodecModel:
    torch.manual_seed(0)
    model = codec.build_model("tiny", **VP_TINY).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        out = model(0.1 * torch.randn(2, 1, 3200))
        loss = (out.audio.pow(2)).mean() + sum(out.losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_presets_of_all_four_families_share_encoder_decoder_and_bitrate():
    models = {k: codec.build_model(f"speech16k-{k}") for k in ("vq", "fsq", "fsp", "vp")}
    kinds = {k: m.config.quantizer.kind for k, m in models.items()}
    assert kinds == {"vq": "vq", "fsq": "fsq", "fsp": "fsp", "vp": "vp"}
    rates = {round(m.bitrate(), 6) for m in models.values()}
    assert len(rates) == 1
    encoders = {sum(p.numel() for p in m.encoder.parameters()) for m in models.values()}
    assert len(encoders) == 1


def test_uncompiled_vp_model_refuses_to_encode():
    model = trained_vp_model(1).eval()
    with pytest.raises(RuntimeError, match="compile"):
        model.encode(torch.randn(1, 1, 640))


def test_compile_then_save_and_load_keep_codes_queue_and_eta(tmp_path):
    model = trained_vp_model()
    model.quantizer.vp_stages[0].eta.fill_(1.37)
    model.eval().compile_codebooks([0.1 * torch.randn(2, 1, 3200)])
    for stage in model.quantizer.vp_stages:
        assert stage.compiled and torch.unique(stage.codebook, dim=0).shape[0] == 16
    wav = 0.1 * torch.randn(1, 1, 6400)
    codes = model.encode(wav)
    assert codes.shape == (1, 2, 20)
    model.save(tmp_path / "vp.ckpt")
    loaded = codec.load_model(tmp_path / "vp.ckpt")
    assert torch.equal(loaded.encode(wav), codes)
    for a, b in zip(model.quantizer.vp_stages, loaded.quantizer.vp_stages, strict=True):
        assert torch.equal(a.queue, b.queue) and torch.equal(a.codebook, b.codebook)
        assert a.eta.item() == b.eta.item() and a.queue_pos.item() == b.queue_pos.item()
    assert loaded.quantizer.vp_stages[0].eta.item() == pytest.approx(1.37)


def test_compiling_again_on_the_same_audio_gives_the_same_codebook():
    model = trained_vp_model().eval()
    audio = [0.1 * torch.randn(2, 1, 3200)]
    model.compile_codebooks(audio)
    first = [s.codebook.clone() for s in model.quantizer.vp_stages]
    model.compile_codebooks(audio)
    assert all(
        torch.equal(a, s.codebook) for a, s in zip(first, model.quantizer.vp_stages, strict=True)
    )


def test_cli_compile_on_a_kaldi_data_dir(tmp_path):
    trained_vp_model().save(tmp_path / "vp.ckpt")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(3):
        save_audio(tmp_path / f"u{i}.wav", 0.1 * rng.standard_normal((1, 8000)), 16000)
        lines.append(f"u{i} {tmp_path / f'u{i}.wav'}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "wav.scp").write_text("\n".join(lines) + "\n")
    out = tmp_path / "compiled.ckpt"
    args = ["compile", str(tmp_path / "vp.ckpt"), "--data", str(tmp_path / "data"), "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "compiled 2 VP stages on 1.5 s of audio" in result.output
    assert "fitted entropy tables" in result.output and "(3 utterances)" in result.output
    compiled = codec.load_model(out)
    assert compiled.entropy is not None  # fitted on the compiled codebooks' codes
    assert compiled.encode(0.1 * torch.randn(1, 1, 640)).shape == (1, 2, 2)

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and f"{out} exists; pass --force" in again.output


def test_cli_compile_explains_what_is_wrong(tmp_path):
    codec.build_model("tiny").save(tmp_path / "fsp.ckpt")
    (tmp_path / "data").mkdir()
    out = str(tmp_path / "o.ckpt")
    result = CliRunner().invoke(
        app, ["compile", str(tmp_path / "fsp.ckpt"), "--data", str(tmp_path / "data"), "-o", out]
    )
    assert result.exit_code == 1 and "no wav.scp" in result.output
    (tmp_path / "data" / "wav.scp").write_text("")
    result = CliRunner().invoke(
        app, ["compile", str(tmp_path / "fsp.ckpt"), "--data", str(tmp_path / "data"), "-o", out]
    )
    assert result.exit_code == 1 and "lists no utterances" in result.output

"""CodecModel: presets, shapes, bitrates, streaming equivalence, save/load, training signal."""

import numpy as np
import pytest
import torch
from helpers import load_speech, random_chunk_sizes, run_chunked

import codec
from codec.model import CodecModel


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return codec.build_model("tiny").eval()


def test_default_preset_is_a_50hz_residual_fsp_codec():
    model = codec.build_model()
    assert model.config.quantizer.kind == "fsp"
    assert model.sample_rate == 16000 and model.hop_length == 320
    assert model.frame_rate == 50.0 and model.latency_ms == 20.0
    assert model.num_stages == 12
    rates = [model.bitrate(n) for n in (3, 6, 12)]
    assert rates == pytest.approx([1494.9, 2989.7, 5979.5], abs=0.1)
    assert codec.build_model("speech16k-fsq").config.quantizer.kind == "fsq"


def test_overrides_use_dotted_keys():
    model = codec.build_model("tiny", **{"model.channels": 2, "model.quantizer.n_stages": 3})
    assert model.config.channels == 2 and model.num_stages == 3
    with pytest.raises(ValueError, match="unknown key model.chanels"):
        codec.build_model("tiny", **{"model.chanels": 2})
    with pytest.raises(ValueError, match="only model"):
        codec.build_model("tiny", **{"optim.lr": 1.0})
    with pytest.raises(FileNotFoundError, match="no preset 'nope'"):
        codec.build_model("nope")


def test_encode_decode_shapes(tiny):
    wav = torch.randn(2, 1, 1000)  # not a whole number of frames: the end is zero-padded
    with torch.no_grad():
        codes = tiny.encode(wav)
        assert codes.shape == (2, 2, 4) and codes.dtype == torch.int64
        assert tiny.encode(wav, n_stages=1).shape == (2, 1, 4)
        assert tiny.decode(codes).shape == (2, 1, 4 * 320)
        assert tiny(wav).audio.shape == (2, 1, 1000)


def test_streaming_encode_of_less_than_a_hop_is_empty(tiny):
    with torch.no_grad(), tiny.streaming(batch_size=2):
        assert tiny.encode(torch.randn(2, 1, 319)).shape == (2, 2, 0)
        assert tiny.encode(torch.randn(2, 1, 1)).shape == (2, 2, 1)
        assert tiny.decode(torch.zeros(2, 2, 0, dtype=torch.long)).shape == (2, 1, 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_model_matches_offline(tiny, seed):
    wav = torch.randn(2, 1, 320 * 20)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        codes, audio = tiny.encode(wav), tiny.decode(tiny.encode(wav))
        with tiny.streaming(batch_size=2):
            streamed_codes = run_chunked(
                tiny.encode, wav, random_chunk_sizes(wav.shape[-1], rng, 900)
            )
            streamed_audio = run_chunked(tiny.decode, codes, random_chunk_sizes(20, rng, 5))
    assert torch.equal(streamed_codes, codes)
    assert (streamed_audio - audio).abs().max() <= 1e-4


def test_streaming_codes_on_real_speech_match_offline():
    torch.manual_seed(0)
    model = codec.build_model().eval()
    speech = load_speech()
    usable = speech[..., : speech.shape[-1] // 320 * 320]
    with torch.no_grad():
        offline = model.encode(usable)
        differing = 0
        for seed in range(3):
            sizes = random_chunk_sizes(usable.shape[-1], np.random.default_rng(seed), 4000)
            with model.streaming(batch_size=1):
                differing += (run_chunked(model.encode, usable, sizes) != offline).sum().item()
    assert differing / (3 * offline.numel()) <= 0.001


def test_save_and_load_round_trip(tiny, tmp_path):
    path = tmp_path / "tiny.ckpt"
    tiny.save(path)
    loaded = codec.load_model(path)
    assert isinstance(loaded, CodecModel) and not loaded.training
    wav = torch.randn(1, 1, 3200)
    with torch.no_grad():
        assert torch.equal(loaded.encode(wav), tiny.encode(wav))
        codes = tiny.encode(wav)
        assert (loaded.decode(codes) - tiny.decode(codes)).abs().max() <= 1e-5
    assert not list(tmp_path.glob("*.tmp"))


def test_half_precision_checkpoint_is_smaller_and_loads_as_float32(tiny, tmp_path):
    tiny.save(tmp_path / "full.ckpt")
    tiny.save(tmp_path / "half.ckpt", "fp16")
    stored = torch.load(tmp_path / "half.ckpt", weights_only=True)["state_dict"]
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    full, half = ((tmp_path / n).stat().st_size for n in ("full.ckpt", "half.ckpt"))
    assert half < 0.6 * full
    loaded = codec.load_model(tmp_path / "half.ckpt")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    wav = 0.1 * torch.randn(1, 1, 3200)
    with torch.no_grad():
        reference, got = tiny(wav).audio, loaded(wav).audio
    assert (got - reference).abs().max() <= 0.05 * reference.abs().max()


def test_load_refuses_what_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a codec model checkpoint"):
        codec.load_model(bogus)
    torch.save({"format": "something-else"}, bogus)
    with pytest.raises(ValueError, match="not a codec model checkpoint"):
        codec.load_model(bogus)
    with pytest.raises(FileNotFoundError, match="no model checkpoint at"):
        codec.load_model(tmp_path / "missing.ckpt")


def test_gradients_reach_the_encoder():
    model = codec.build_model("tiny").train()
    out = model(torch.randn(2, 1, 3200))
    (out.audio.pow(2).mean() + sum(out.losses.values())).backward()
    first_conv = model.encoder.layers[0].conv
    grad = first_conv.parametrizations.weight.original1.grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("preset", ["tiny", "tiny-frame"])  # SEANet and frame-rate backbones
def test_tiny_preset_learns_in_seconds(preset):
    torch.manual_seed(0)
    model = codec.build_model(preset).train()
    t = torch.arange(6400) / 16000
    wav = (0.5 * torch.sin(2 * torch.pi * 220 * t) * torch.sin(2 * torch.pi * 3 * t)).view(1, 1, -1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn():
        out = model(wav)
        return (out.audio - wav).abs().mean(), sum(out.losses.values())

    first = loss_fn()[0].item()
    for _ in range(60):
        recon, aux = loss_fn()
        opt.zero_grad()
        (recon + aux).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        final = (model.decode(model.encode(wav))[..., :6400] - wav).abs().mean().item()
    assert final < 0.6 * first


def test_int8_checkpoint_keeps_tables_and_transforms_and_decodes_alike(tmp_path):
    """Shipped models store each trained matrix in int8 rows: near half of fp16, the fixed
    transforms exact, the entropy tables kept, the weights' hash the same at every load."""
    model = codec.build_model("tiny-frame").eval()
    model.fit_entropy([0.1 * torch.randn(2, 1, 16000)])
    model.save(tmp_path / "half.ckpt", "fp16")
    model.save(tmp_path / "int8.ckpt", "int8")
    stored = torch.load(tmp_path / "int8.ckpt", weights_only=True)
    assert torch.int8 in {v.dtype for v in stored["state_dict"].values()}
    fixed = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert fixed and all(stored["state_dict"][name].dtype == torch.float16 for name in fixed)
    half = torch.load(tmp_path / "half.ckpt", weights_only=True)["state_dict"]
    nbytes = [
        sum(v.nbytes for k, v in s.items() if k not in fixed) for s in (half, stored["state_dict"])
    ]
    assert nbytes[1] < 0.6 * nbytes[0]
    loaded, again = (codec.load_model(tmp_path / "int8.ckpt") for _ in range(2))
    assert loaded.entropy.hash == model.entropy.hash
    assert loaded.weights_hash() == again.weights_hash() != model.weights_hash()
    wav = 0.1 * torch.randn(1, 1, 6400)
    with torch.no_grad():
        reference, got = model(wav).audio, loaded(wav).audio
    assert (got - reference).norm() <= 0.1 * reference.norm()
    with pytest.raises(ValueError, match="use fp32, fp16 or int8"):
        model.save(tmp_path / "x.ckpt", "int4")

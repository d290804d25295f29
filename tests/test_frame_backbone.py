"""The frame-rate backbone: causal STFT, overlap-add synthesis, ConvNeXt stacks, the model."""

import math

import numpy as np
import pytest
import torch
from helpers import random_chunk_sizes, run_chunked

import codec
from codec.audio import load_audio, save_audio
from codec.compress import decode_file, encode_file
from codec.config import FrameConfig, ModelConfig
from codec.frame_decoder import FrameDecoder
from codec.frame_encoder import FrameEncoder
from codec.runtime import DelayTrim, flush_length
from codec.stft import CausalSTFT, OverlapAddISTFT, tapered_window


def small_config(**frame) -> ModelConfig:
    return ModelConfig(backbone="frame", latent_dim=8, frame=FrameConfig(width=16, **frame))


@pytest.mark.parametrize(("length", "overlap"), [(480, 160), (640, 320), (400, 80)])
def test_tapered_windows_add_up_to_one(length, overlap):
    window, hop = tapered_window(length, overlap), length - overlap
    total = torch.zeros(hop * 6 + overlap)
    for j in range(6):
        total[j * hop : j * hop + length] += window
    assert torch.allclose(total[overlap : 6 * hop], torch.ones(6 * hop - overlap), atol=1e-6)
    with pytest.raises(ValueError, match="overlap"):
        tapered_window(400, 201)


def test_causal_stft_finds_a_tone_in_its_bin_and_sees_only_the_past():
    stft = CausalSTFT(window=640, hop=320, power=1.0)  # power 1: the plain spectrum
    t = torch.arange(320 * 8) / 16000
    wav = torch.sin(2 * torch.pi * 1000 * t).view(1, 1, -1)  # 1 kHz = bin 40 of 640 at 16 kHz
    with torch.no_grad():
        spec = stft(wav)
        magnitude = spec[:, :321].square() + spec[:, 321:].square()
        assert spec.shape == (1, 642, 8)
        assert magnitude[0, :, 3:].argmax(dim=0).eq(40).all()
        changed = wav.clone()
        changed[..., 320 * 5 :] = 0
        assert torch.equal(stft(changed)[..., :5], spec[..., :5])
        assert not torch.equal(stft(changed)[..., 5:], spec[..., 5:])


@pytest.mark.parametrize("head", ["polar", "complex"])
def test_overlap_add_inverts_the_centred_dft_of_each_frame(head):
    istft = OverlapAddISTFT(window=480, hop=320, head=head, power=0.3)
    frames = torch.randn(3, 480, dtype=torch.float64)
    spectrum = torch.fft.rfft(frames.roll(-240, dims=1), norm="ortho")  # phases from the centre
    if head == "polar":
        spec = torch.cat([spectrum.abs().log(), spectrum.angle()], dim=1)
    else:  # compressed as the analysis compresses: X |X|^(0.3 - 1)
        compressed = spectrum * spectrum.abs().pow(0.3 - 1)
        spec = torch.cat([compressed.real, compressed.imag], dim=1)
    spec = spec.T[None].float()
    with torch.no_grad():
        audio = istft(spec)[0, 0].double()
    window = tapered_window(480, 160).double()
    expected = torch.zeros(3 * 320 + 160, dtype=torch.float64)
    for j in range(3):
        expected[j * 320 : j * 320 + 480] += frames[j] * window
    assert audio.shape == (960,)
    assert (audio - expected[:960]).abs().max() < 1e-4
    flat = torch.zeros(1, 482, 1)  # magnitude 1, phase 0 in every bin: a pulse at the centre
    flat[:, :241] = 1.0 if head == "complex" else 0.0
    with torch.no_grad():
        pulse = istft(flat)[0, 0]
    assert pulse.abs().argmax() == 240


def test_log_magnitude_and_phase_features_describe_each_bin():
    """`log_magnitude` is log |X| (floored), `phase` the unit vector X / |X|, in the order named."""
    plain = CausalSTFT(window=640, hop=320, power=1.0)
    polar = CausalSTFT(window=640, hop=320, features=("log_magnitude", "phase"), floor=1e-4)
    t = torch.arange(320 * 8) / 16000
    wav = 0.5 * torch.sin(2 * torch.pi * 1000 * t + 0.3).view(1, 1, -1)
    wav[..., 320 * 6 :] = 0  # frame 7 (samples 1920-2560) is silent
    with torch.no_grad():
        spec, feats = plain(wav), polar(wav)
    assert polar.channels == 3 * 321 and feats.shape == (1, 963, 8)
    re, im = spec[:, :321], spec[:, 321:]
    magnitude = (re.square() + im.square()).sqrt()
    assert torch.allclose(feats[:, :321], magnitude.clamp_min(1e-4).log(), atol=1e-5)
    loud = magnitude > 1e-3
    assert loud[0, 40, :7].all() and not loud[0, :, 7:].any()  # the tone; the silent frame
    unit = feats[:, 321:642].square() + feats[:, 642:].square()
    assert torch.allclose(unit[loud], torch.ones_like(unit[loud]), atol=1e-5)
    assert torch.allclose(feats[:, 321:642][loud], (re / magnitude)[loud], atol=1e-5)
    assert torch.all(feats[:, :321, 7:] == math.log(1e-4))  # floored
    both = CausalSTFT(window=640, hop=320, features=("log_magnitude", "compressed"))
    assert both.channels == 3 * 321
    for features in [(), ("log_magnitude", "log_magnitude"), ("cepstrum",)]:
        with pytest.raises(ValueError, match="model.frame.features must name each of"):
            CausalSTFT(window=640, hop=320, features=features)


def test_the_phase_advance_feature_measures_a_tone_off_its_bin_centre():
    """A 233.33 Hz tone turns 2 pi 233.33 Hz x 20 ms a hop; bin 9 of 640 samples (225 Hz) turns
    2 pi 225 Hz x 20 ms: the feature is the difference, 2 pi 8.33 Hz x 20 ms = 1.047 rad."""
    stft = CausalSTFT(window=640, hop=320, features=("phase_advance",))
    t = torch.arange(320 * 8) / 16000
    with torch.no_grad():
        advance = stft(torch.sin(2 * torch.pi * 233.33 * t).view(1, 1, -1))
    assert advance.shape == (1, 2 * 321, 8)
    cos, sin = advance[0, 9, 2:], advance[0, 321 + 9, 2:]  # past the frames the start cuts
    assert torch.allclose(torch.atan2(sin, cos), torch.tensor(1.0472), atol=2e-3)
    assert torch.allclose(cos.square() + sin.square(), torch.ones(6), atol=1e-4)


@pytest.mark.parametrize(
    ("synthesis", "head", "accumulate", "features", "final_norm"),
    [
        (480, "polar", False, ["compressed"], True),
        (640, "polar", False, ["compressed"], True),
        (480, "polar", True, ["compressed"], True),
        (480, "complex", False, ["compressed"], True),
        (640, "polar", False, ["log_magnitude", "phase"], False),
        (480, "polar", False, ["log_magnitude", "compressed"], False),
        (640, "polar", True, ["log_magnitude", "phase_advance"], False),
    ],
)
def test_encoder_and_decoder_stream_exactly_like_offline(
    synthesis, head, accumulate, features, final_norm
):
    torch.manual_seed(0)
    cfg = small_config(
        synthesis_window=synthesis, head=head, accumulate_phase=accumulate, features=features,
        final_norm=final_norm,
    )  # fmt: skip
    encoder, decoder = FrameEncoder(cfg), FrameDecoder(cfg)
    wav = torch.randn(2, 1, 320 * 9 + 77)
    latent = torch.randn(2, 8, 13)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        offline, audio = encoder(wav), decoder(latent)
        with encoder.streaming(2), decoder.streaming(2):
            streamed = run_chunked(encoder, wav, random_chunk_sizes(wav.shape[-1], rng, 900))
            streamed_audio = run_chunked(decoder, latent, random_chunk_sizes(13, rng, 4))
    assert offline.shape == streamed.shape == (2, 8, 9)
    assert (streamed - offline).abs().max() <= 1e-5
    assert audio.shape == streamed_audio.shape == (2, 1, 13 * 320)
    assert (streamed_audio - audio).abs().max() <= 1e-5 * audio.abs().max()  # float rounding
    assert decoder.delay == synthesis - 320


@pytest.mark.parametrize("accumulate", [False, True])
def test_a_steady_input_gives_a_steady_tone_only_when_phases_accumulate(accumulate):
    """Bin 7 of a 480-sample frame is 233.3 Hz, no harmonic of the 50 Hz frame rate: the same
    log magnitude and phase input every frame renders it only as phase advances."""
    istft = OverlapAddISTFT(window=480, hop=320, accumulate=accumulate)
    spec = torch.zeros(1, 482, 40)
    spec[:, :241] = -20.0  # silence in every bin ...
    spec[:, 7] = 3.0  # ... but bin 7
    with torch.no_grad():
        audio = istft(spec)[0, 0, 640:].double()  # past the first frames
    t = torch.arange(len(audio), dtype=torch.float64) / 16000
    tone = torch.stack([torch.cos(2 * torch.pi * 233.33 * t), torch.sin(2 * torch.pi * 233.33 * t)])
    fit = torch.linalg.lstsq(tone.T, audio[:, None]).solution
    residual = (audio - (tone.T @ fit)[:, 0]).norm() / audio.norm()
    assert (residual < 0.01) if accumulate else (residual > 0.5)


def test_a_frame_phase_gradient_sums_the_same_phases_but_teaches_each_advance_by_its_frame():
    """`phase_gradient: frame` holds the sum of earlier advances fixed: the audio is the same,
    and a loss on the last hop of samples (frames 4 and 5 overlap there) reaches the advances
    of those frames only."""
    spec = torch.randn(1, 482, 6)
    audio, grads = {}, {}
    for gradient in ("sum", "frame"):
        istft = OverlapAddISTFT(window=480, hop=320, accumulate=True, phase_gradient=gradient)
        x = spec.clone().requires_grad_()
        audio[gradient] = istft(x)
        audio[gradient][..., -320:].pow(2).sum().backward()
        grads[gradient] = x.grad[0, 241:].abs().sum(dim=0)  # per frame, over the phase inputs
    assert torch.allclose(audio["sum"], audio["frame"], atol=1e-5)
    assert (grads["sum"][:5] > 0).all()  # the summed phase reaches back to every frame
    assert (grads["frame"][:4] == 0).all() and (grads["frame"][4:] > 0).all()
    with pytest.raises(ValueError, match="unknown model.frame.phase_gradient 'sideways'"):
        OverlapAddISTFT(window=480, hop=320, accumulate=True, phase_gradient="sideways")


def test_synthesis_window_outside_hop_to_two_hops_is_refused():
    with pytest.raises(ValueError, match="synthesis_window must be in"):
        FrameDecoder(small_config(synthesis_window=700))
    with pytest.raises(ValueError, match="unknown Fourier head 'cartesian'"):
        FrameDecoder(small_config(head="cartesian"))
    with pytest.raises(ValueError, match="accumulated phases need the polar head"):
        FrameDecoder(small_config(head="complex", accumulate_phase=True))


@pytest.fixture(scope="module")
def tiny_frame():
    torch.manual_seed(0)
    return codec.build_model("tiny-frame").eval()


def test_latency_counts_the_synthesis_overlap(tiny_frame):
    assert tiny_frame.delay == 160 and tiny_frame.latency_ms == 30.0
    assert codec.build_model("tiny").latency_ms == 20.0
    with pytest.raises(ValueError, match="unknown model.backbone 'rnn'"):
        codec.build_model("tiny", **{"model.backbone": "rnn"})


@pytest.mark.parametrize("seed", [0, 1])
def test_streamed_model_gives_offline_codes_and_audio_delay_samples_late(tiny_frame, seed):
    rng = np.random.default_rng(seed)
    wav = torch.randn(2, 1, 320 * 20 + 45)
    delay = tiny_frame.delay
    with torch.no_grad():
        codes = tiny_frame.encode(wav)  # offline: the end padded by `delay`, to whole frames
        audio = tiny_frame.decode(codes)  # offline: the first `delay` samples dropped
        flushed = torch.nn.functional.pad(wav, (0, codes.shape[-1] * 320 - wav.shape[-1]))
        with tiny_frame.streaming(batch_size=2):
            sizes = random_chunk_sizes(flushed.shape[-1], rng, 900)
            streamed_codes = run_chunked(tiny_frame.encode, flushed, sizes)
            sizes = random_chunk_sizes(codes.shape[-1], rng, 5)
            streamed_audio = run_chunked(tiny_frame.decode, codes, sizes)
    assert codes.shape == (2, 2, 21)  # 6445 + 160 samples need 21 frames
    assert torch.equal(streamed_codes, codes)
    assert audio.shape[-1] == 21 * 320 - delay >= wav.shape[-1]
    assert (streamed_audio[..., delay:] - audio).abs().max() <= 1e-5 * audio.abs().max()
    assert tiny_frame(wav).audio.shape == wav.shape


@pytest.mark.parametrize("received", [0, 1, 159, 160, 161, 479, 480, 481, 6445])
def test_the_flush_renders_every_sample_in_whole_frames(received):
    flush = flush_length(received, 160, 320)
    assert (received + flush) % 320 == 0  # whole frames
    assert received + 160 <= received + flush < received + 160 + 320  # the delay, no frame more
    assert flush_length(received, 0, 320) == -received % 320  # no delay: to whole frames only


def test_the_delay_is_trimmed_once_across_chunks_of_any_size():
    audio = np.arange(2 * 700).reshape(2, 700)
    trim = DelayTrim(160)
    chunks = [trim(part) for part in np.split(audio, [100, 100, 150, 390, 700], axis=1)]
    assert [c.shape[1] for c in chunks] == [0, 0, 0, 230, 310, 0]
    assert np.array_equal(np.concatenate(chunks, axis=1), audio[:, 160:])


def test_the_training_pass_aligns_output_with_input():
    """A decoder that plays its frames back (the latent carries the waveform) must give the
    input back in the forward pass: no sample shifted by the delay."""
    model = codec.build_model("tiny-frame")
    wav = torch.randn(1, 1, 320 * 6)
    delayed = torch.nn.functional.pad(wav, (160, 0))  # what the decoder emits: `delay` late
    model.decoder.forward = lambda latent: delayed[..., : latent.shape[-1] * 320]
    assert torch.equal(model(wav).audio, wav)


def test_token_files_of_a_delayed_decoder_keep_length_and_alignment(tiny_frame, tmp_path):
    """encode_file codes the `delay` samples past the end; decode_file drops the decoder's
    first `delay`: the file decodes to the offline reconstruction, sample for sample."""
    wav = 0.3 * np.random.default_rng(0).standard_normal(16000 * 3 + 111).astype(np.float32)
    save_audio(tmp_path / "in.wav", wav[None], 16000)
    wav = load_audio(tmp_path / "in.wav")[0][0]  # as stored: 16-bit
    with open(tmp_path / "x.tok", "wb") as target:
        encode_file(tiny_frame, "tiny-frame", tmp_path / "in.wav", target)
    with open(tmp_path / "x.tok", "rb") as source:
        decode_file(source, tmp_path / "out.wav", lambda header: tiny_frame)
    decoded = load_audio(tmp_path / "out.wav")[0][0]
    with torch.no_grad():
        offline = tiny_frame.decode(tiny_frame.encode(torch.from_numpy(wav).view(1, 1, -1)))
    offline = np.clip(offline.view(-1).numpy()[: len(wav)], -1, 1)
    assert decoded.shape == wav.shape
    assert np.abs(decoded - offline).max() < 2 / 32768  # 16-bit rounding

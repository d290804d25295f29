"""Training crops: planned per (seed, step, rank), read from disk or cut from memory alike."""

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import DATA

import codec.data.memory as memory
from codec.data.crops import CropBatches, CropSettings, normalise_crops
from codec.data.kaldi import load_utterance, read_data_dir
from codec.data.memory import MemoryCrops, bank_bytes, load_bank


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Whole files and segments of one file; one utterance shorter than a crop."""
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(1)
    short = (0.2 * rng.standard_normal(2000)).clip(-1, 1)
    sf.write(root / "short.wav", short, 16000, subtype="PCM_16")
    (root / "wav.scp").write_text(
        f"en {DATA / 'speech_en.flac'}\nen2 {DATA / 'speech_en2.flac'}\n"
        f"short {root / 'short.wav'}\n"
    )
    (root / "segments").write_text(
        "en-a en 0.0 1.5\nen-b en 1.5 3.25\nen2-a en2 0.5 2.0\nshort-a short 0 0.125\n"
    )
    return root


def test_memory_crops_equal_the_disk_crops_of_the_same_step(data_dir):
    utts = read_data_dir(data_dir)
    crop = CropSettings(batch_size=3, segment=8000, seed=7, rank=1)
    disk = CropBatches(utts, 16000, crop)
    cut = MemoryCrops(load_bank(utts, 16000, workers=2), crop)
    for step in (0, 1, 57):
        torch.testing.assert_close(cut.batch(step), disk[step], atol=1e-6, rtol=1e-5)
    assert not torch.equal(cut.batch(0), cut.batch(1))
    other_rank = MemoryCrops(load_bank(utts, 16000), CropSettings(3, 8000, 7, 2))
    assert not torch.equal(other_rank.batch(0), cut.batch(0))
    # the short utterance comes out zero-padded
    picks = [cut.sampler.plan(s).index for s in range(200)]
    step, row = next((s, list(p).index(3)) for s, p in enumerate(picks) if 3 in p)
    batch = cut.batch(step)
    assert batch[row, 0, 2000:].abs().max() == 0 and batch[row, 0, :2000].abs().max() > 0


def test_the_bank_holds_every_segment_exactly_and_decodes_each_file_once(data_dir, monkeypatch):
    utts = read_data_dir(data_dir)
    calls = []
    original = memory.load_audio
    monkeypatch.setattr(memory, "load_audio", lambda p, r: calls.append(p) or original(p, r))
    bank = load_bank(utts, 16000, workers=2)
    assert sorted(map(str, calls)) == sorted({str(u.path) for u in utts})  # 3 files, 4 segments
    for i, utt in enumerate(utts):
        torch.testing.assert_close(
            bank.utterance(i), torch.from_numpy(load_utterance(utt, 16000)[0]), atol=0, rtol=0
        )
    assert bank.audio.dtype == torch.int16
    assert bank_bytes(utts, 16000) == 2 * len(bank.audio)
    assert bank.seconds == pytest.approx(1.5 + 1.75 + 1.5 + 0.125)


def test_crops_are_scaled_to_their_loudness_and_kept_under_full_scale():
    wav = torch.stack([torch.sin(torch.arange(1600.0) / 5) * a for a in (0.01, 0.5, 0.0)])[:, None]
    out = normalise_crops(wav, torch.tensor([-20.0, 0.0, -20.0]))
    rms = out.pow(2).mean(dim=(1, 2)).sqrt()
    assert rms[0] == pytest.approx(0.1, rel=1e-4)  # -20 dBFS
    assert out[1].abs().max() == pytest.approx(0.99)  # 0 dBFS RMS would clip: peak held at 0.99
    assert torch.equal(out[2], wav[2])  # silence stays silence

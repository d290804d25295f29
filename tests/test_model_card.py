"""`codec.model_card`: a checkpoint's config and figures read without torch, nothing executed."""

import os
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch

import codec
from codec.model_card import read_card
from codec.zoo import ARCHIVED, MODELS, checkpoint_file


@pytest.mark.parametrize("name", sorted(MODELS | ARCHIVED))
def test_the_card_gives_the_loaded_models_figures(name):
    card, model = read_card(checkpoint_file(name)), codec.load_model(name)
    assert card.name == name and card.config == model.config
    assert (card.hop_length, card.delay) == (model.hop_length, model.delay)
    assert card.latency_ms == model.latency_ms
    assert card.codebook_sizes == model.quantizer.codebook_sizes
    assert [card.bitrate(n) for n in (1, 6, 12)] == [model.bitrate(n) for n in (1, 6, 12)]


@pytest.mark.parametrize("preset", ["tiny", "tiny-frame", "speech16k-vq"])
def test_cards_of_every_backbone_and_quantizer_family(preset, tmp_path):
    model = codec.build_model(preset)
    model.save(tmp_path / "m.ckpt", "fp16")
    card = read_card(tmp_path / "m.ckpt")
    assert card.config == model.config and card.latency_ms == model.latency_ms
    assert card.bitrate(2) == model.bitrate(2) and card.delay == model.delay


class Payload:
    """Pickled, it runs `touch MARK` where unpickled by a plain unpickler."""

    def __init__(self, mark):
        self.mark = mark

    def __reduce__(self):
        return (os.system, (f"touch {self.mark}",))


def test_a_file_that_is_no_checkpoint_is_refused_and_nothing_in_it_runs(tmp_path):
    mark = tmp_path / "pwned"
    torch.save({"format": "codec-model", "config": {}, "x": Payload(mark)}, tmp_path / "evil.ckpt")
    with pytest.raises(ValueError, match="is not a codec model checkpoint"):
        read_card(tmp_path / "evil.ckpt")
    assert not mark.exists()
    torch.save({"format": "codec-model", "version": 1}, tmp_path / "bare.ckpt")
    with pytest.raises(ValueError, match="without its config"):
        codec.load_model(tmp_path / "bare.ckpt")
    (tmp_path / "noise.ckpt").write_bytes(os.urandom(2000))
    with pytest.raises(ValueError, match="is not a codec model checkpoint"):
        read_card(tmp_path / "noise.ckpt")
    with zipfile.ZipFile(tmp_path / "other.ckpt", "w") as archive:
        archive.writestr("x/data.pkl", pickle.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="is not a codec model checkpoint"):
        read_card(tmp_path / "other.ckpt")


def test_listing_the_models_imports_no_torch():
    script = (
        "import sys\nfrom codec.cli import app\n"
        "try:\n    app(['models'])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(alias: default)" in done.stdout

"""`codec.train.losses`: the STFT loss the trainer uses is auraloss's, value and gradient."""

import auraloss
import torch

from codec.train.losses import multi_resolution_stft_loss


def test_the_stft_loss_matches_auralosss_and_computes_no_phase():
    torch.manual_seed(0)
    target = torch.randn(2, 1, 8000)
    ours = torch.randn(2, 1, 8000, requires_grad=True)
    theirs = ours.detach().clone().requires_grad_(True)
    fast, reference = multi_resolution_stft_loss(), auraloss.freq.MultiResolutionSTFTLoss()
    value, expected = fast(ours, target), reference(theirs, target)
    value.backward()
    expected.backward()
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(ours.grad, theirs.grad)
    assert [f.fft_size for f in fast.stft_losses] == [f.fft_size for f in reference.stft_losses]
    assert all(f.stft(target[:, 0])[1] is None for f in fast.stft_losses)

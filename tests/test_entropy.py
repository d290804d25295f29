"""Entropy coding: integer tables, exact rANS round trips, compression, and garbage payloads."""

import io

import numpy as np
import pytest
import torch

from codec.entropy import TOTAL, EntropyCodingError, EntropyModel, frequencies, split_digits

FSP = [[8, 5, 5, 5]] * 4  # four stages of 1000 codes, as the shipped model's


def markov_codes(rng: np.random.Generator, frames: int, radices: list[list[int]]) -> np.ndarray:
    """Codes `[n_q, frames]` that repeat their previous digit often: what contexts can use."""
    out = np.zeros((len(radices), frames), dtype=np.int64)
    for s, stage in enumerate(radices):
        digits = []
        for r in stage:
            d = np.zeros(frames, dtype=np.int64)
            d[:1] = rng.integers(r)
            for t in range(1, frames):
                d[t] = d[t - 1] if rng.random() < 0.7 else rng.integers(min(r, 3))
            digits.append(d)
        out[s] = sum(d * int(np.prod(stage[:j])) for j, d in enumerate(digits))
    return out


def fitted(radices=FSP, seed=0) -> EntropyModel:
    rng = np.random.default_rng(seed)
    return EntropyModel.fit(radices, [markov_codes(rng, 400, radices) for _ in range(5)])


def test_frequencies_are_integers_that_sum_to_the_total_and_never_zero():
    counts = np.array([[0, 0, 0], [500, 0, 10_000], [7, 7, 7]])
    freq = frequencies(counts)
    assert freq.dtype == np.int64 and (freq.sum(-1) == TOTAL).all() and (freq >= 1).all()
    assert freq[1, 2] > freq[1, 0] > freq[1, 1]  # the order of the counts survives
    big = frequencies(np.zeros((1, 65535), dtype=np.int64))
    assert big.sum() == TOTAL and big.min() == 1


def test_digits_are_the_mixed_radix_of_the_code():
    codes = np.arange(1000)
    digits = split_digits(codes, [8, 5, 5, 5])
    np.testing.assert_array_equal(
        digits[0] + 8 * (digits[1] + 5 * (digits[2] + 5 * digits[3])), codes
    )


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("n_q", [1, 2, 4])
def test_round_trip_is_exact_for_any_codes(channels, n_q):
    model = fitted()
    rng = np.random.default_rng(n_q)
    cases = [
        rng.integers(0, 1000, (37, channels, n_q)),  # uniform: codes the tables rarely saw
        np.zeros((50, channels, n_q), dtype=np.int64),  # one code throughout
        np.full((1, channels, n_q), 999),  # a one-frame packet of the least likely code
        markov_codes(rng, 50, FSP[:n_q]).T[:, None].repeat(channels, 1),
    ]
    for codes in cases:
        data = model.encode(codes)
        assert len(data) <= model.max_payload(codes.shape[0], channels, n_q)
        np.testing.assert_array_equal(model.decode(data, *codes.shape), codes)


def test_other_quantizers_digits_round_trip_too():
    radices = [[1024], [1024], [4, 4, 4]]  # VQ/VP stages are one digit, with no context
    model = fitted(radices)
    codes = np.random.default_rng(3).integers(0, 64, (20, 1, 3))
    np.testing.assert_array_equal(model.decode(model.encode(codes), 20, 1, 3), codes)


def test_predictable_codes_take_fewer_bytes_than_the_nominal_rate():
    model = fitted()
    codes = markov_codes(np.random.default_rng(9), 50, FSP).T[:, None]
    nominal_bytes = 50 * 4 * np.log2(1000) / 8
    assert len(model.encode(codes)) < 0.6 * nominal_bytes
    uniform = np.random.default_rng(9).integers(0, 1000, (50, 1, 4))
    assert len(model.encode(uniform)) > nominal_bytes  # what the tables did not expect costs


def test_tables_fitted_on_unpredictable_codes_cost_no_more_than_the_nominal_rate():
    """Codes with nothing to predict leave most of the 30,000 contexts of a digit nearly empty:
    counted alone they over-fit (0.6 bits a stage above the nominal rate on fresh codes);
    backed off to coarser contexts they cost within 0.025 bits a stage of it."""
    rng = np.random.default_rng(3)
    model = EntropyModel.fit(FSP, [rng.integers(0, 1000, (4, 400)) for _ in range(5)])
    fresh = rng.integers(0, 1000, (2000, 1, 4))
    assert model.stage_bits(fresh).sum() / 2000 < 4 * (np.log2(1000) + 0.025)


def test_tables_survive_a_checkpoint_and_their_hash_names_them():
    model = fitted()
    buffer = io.BytesIO()
    torch.save(model.state(), buffer)
    buffer.seek(0)
    loaded = EntropyModel.from_state(torch.load(buffer, weights_only=True))
    assert loaded.hash == model.hash
    codes = np.random.default_rng(5).integers(0, 1000, (30, 1, 4))
    assert loaded.encode(codes) == model.encode(codes)
    assert fitted(seed=1).hash != model.hash


def test_garbage_payloads_fail_cleanly():
    model = fitted()
    rng = np.random.default_rng(11)
    good = model.encode(markov_codes(rng, 40, FSP).T[:, None])
    outcomes = {"error": 0, "decoded": 0}
    for trial in range(3000):
        if trial % 3 == 0:
            data = rng.bytes(int(rng.integers(0, 300)))
        else:
            damaged = bytearray(good)
            for position in rng.integers(0, len(good), rng.integers(1, 4)):
                damaged[position] ^= 1 << int(rng.integers(8))
            data = bytes(damaged[: int(rng.integers(len(good) - 3, len(good) + 1))])
        try:
            codes = model.decode(data, 40, 1, 4)
        except EntropyCodingError:
            outcomes["error"] += 1
            continue
        assert codes.shape == (40, 1, 4) and codes.min() >= 0 and codes.max() < 1000
        outcomes["decoded"] += 1
    assert outcomes["error"] > 2500  # the coder's end state catches nearly all damage

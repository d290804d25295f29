"""Entropy coding of codes: integer probability tables fitted on training tokens, and rANS.

Each stage's code is split into digits (an FSP/FSQ code into its per-dimension levels, first
digit least significant; a VQ/VP code is one digit). Digit `j` of stage `s` in frame `t` is
coded with the frequencies of its context: the earlier digits of the same code, the same digit
in frame `t - 1` (none at a packet's first frame) and the same digit of stage `s - 1` in frame
`t`. Both sides know all three when it is decoded. The frequencies are integers summing to
`TOTAL`, every one at least 1 (a code never seen in training still encodes); they are fitted
once, stored in the model checkpoint and used as stored, so encoder and decoder agree on every
machine by construction: no floating point is involved in coding.

The coder is rANS on a Python integer of unbounded precision: no renormalisation, and the state
after the last symbol is the packet's payload (`docs/token-format.md`). With uniform
frequencies it is exactly the mixed-radix packing of format version 2.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

PRECISION = 16
TOTAL = 1 << PRECISION
WORD_BITS = 16  # the coder's state moves out and in by 16-bit words
WORD_MASK = (1 << WORD_BITS) - 1
STATE_LOW = 1 << 32  # the state stays in [STATE_LOW, STATE_LOW << WORD_BITS)
RENORM_SHIFT = 32 + WORD_BITS - PRECISION
SCHEME = 1  # the context layout above; a file records it, a new layout gets a new number
MAX_CONTEXT_RADIX = 16  # larger digits (VQ/VP codes) are coded without time/stage context
HELD_OUT_EVERY = 5  # fitting: every 5th utterance chooses how far contexts back off
BACKOFF_WEIGHTS = (0.5, 2.0, 8.0, 32.0, 128.0, 512.0)  # pseudo-counts of the coarser context


class EntropyCodingError(ValueError):
    """A payload that does not decode with these tables: corrupted, or made with others."""


def split_digits(codes: np.ndarray, radices: list[int]) -> list[np.ndarray]:
    """Codes (any shape) -> one array per digit, first digit least significant."""
    digits, rest = [], codes
    for radix in radices:
        digits.append(rest % radix)
        rest = rest // radix
    return digits


def frequencies(counts: np.ndarray) -> np.ndarray:
    """Counts `[..., r]` -> integer frequencies `[..., r]`, each >= 1, summing to TOTAL.

    Add-one-half smoothing, rounded down; what rounding leaves goes to the most frequent code.
    Integer arithmetic only, so the result is the same on every machine."""
    counts = counts.astype(np.int64)
    r = counts.shape[-1]
    if r > TOTAL:
        raise ValueError(f"an alphabet of {r} codes is over the coder's {TOTAL}")
    freq = 1 + (TOTAL - r) * (2 * counts + 1) // (2 * counts.sum(-1, keepdims=True) + r)
    top = counts.argmax(-1)[..., None]
    rest = (TOTAL - freq.sum(-1))[..., None]
    np.put_along_axis(freq, top, np.take_along_axis(freq, top, -1) + rest, -1)
    return freq


@dataclass(frozen=True)
class DigitContext:
    """Where digit `j` of stage `s` takes its context from: table `[inner, prev, below, r]`."""

    radix: int
    inner: int  # product of the radices of the earlier digits of the code
    prev: int  # radix + 1 (the last value: no previous frame), or 1 (no time context)
    below: int  # radix (the digit of stage s - 1), or 1 (none)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.inner, self.prev, self.below, self.radix)


def digit_contexts(radices: list[list[int]]) -> list[list[DigitContext]]:
    """The context layout of every digit of every stage, from the stages' digit radices."""
    layout = []
    for s, stage in enumerate(radices):
        row, inner = [], 1
        for r in stage:
            small = r <= MAX_CONTEXT_RADIX
            below = r if small and s > 0 and radices[s - 1] == stage else 1
            row.append(DigitContext(r, inner, r + 1 if small else 1, below))
            inner *= r
        layout.append(row)
    return layout


def backed_off(counts: np.ndarray, weight: float) -> np.ndarray:
    """Frequencies `[inner, prev, below, r]` from counts of that shape: each context's counts
    plus `weight` pseudo-counts of the next coarser context's distribution (no stage below, then
    no previous frame, then no earlier digit, then uniform). Contexts seen rarely lean on the
    coarser ones, so tables fitted on a few hours of codes do not over-fit them. A frame with no
    previous one (an utterance's or a packet's first) is a context of its own, backed off the
    same way."""
    p = np.full(counts.shape[-1], 1 / counts.shape[-1])
    for coarse in ((0, 1, 2), (1, 2), (2,), ()):  # the axes summed out, coarsest first
        level = counts.sum(axis=coarse, keepdims=True)
        p = (level + weight * p) / (level.sum(-1, keepdims=True) + weight)
    return frequencies(np.round(p * (1 << 30)).astype(np.int64))


def backed_off_table(counted: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Frequencies from `counted + held_out` counts, backed off with the weight under which the
    tables of `counted` alone code `held_out` in the fewest bits."""
    bits = [-(held_out * np.log2(backed_off(counted, w) / TOTAL)).sum() for w in BACKOFF_WEIGHTS]
    return backed_off(counted + held_out, BACKOFF_WEIGHTS[int(np.argmin(bits))])


class EntropyModel:
    """Per-digit context tables of a model's stages; codes a packet to bytes and back."""

    def __init__(self, radices: list[list[int]], tables: list[list[np.ndarray]]) -> None:
        self.radices = [list(map(int, stage)) for stage in radices]
        self.layout = digit_contexts(self.radices)
        for s, (row, stage_tables) in enumerate(zip(self.layout, tables, strict=True)):
            for j, (context, table) in enumerate(zip(row, stage_tables, strict=True)):
                if table.shape != context.shape or (table.sum(-1) != TOTAL).any():
                    raise ValueError(f"entropy table {s}.{j} is malformed")
        self.tables = [[t.astype(np.int64) for t in stage] for stage in tables]
        self.starts = [[np.cumsum(t, -1) - t for t in stage] for stage in self.tables]
        self._plan: list | None = None  # for decoding, built on first use
        digest = hashlib.sha256(str((SCHEME, PRECISION, self.radices)).encode())
        for stage in self.tables:
            for table in stage:
                digest.update(table.astype("<u4").tobytes())
        self.hash = digest.hexdigest()[:16]

    @property
    def num_stages(self) -> int:
        return len(self.radices)

    @classmethod
    def fit(cls, radices: list[list[int]], utterances: Iterable[np.ndarray]) -> EntropyModel:
        """Tables from the codes `[n_q, frames]` of each training utterance (one channel).

        Each context's counts are backed off to coarser contexts (`backed_off`); the weight of
        the coarser ones is chosen per digit by the bits it gives every HELD_OUT_EVERY-th
        utterance when the rest are counted, then the tables are counted on all of them."""
        layout = digit_contexts(radices)
        counts = [
            [np.zeros((2, *c.shape), np.int64) for c in row] for row in layout
        ]  # [counted, held out]
        for i, codes in enumerate(utterances):
            held = int(i % HELD_OUT_EVERY == 0)
            digits = [split_digits(codes[s], radices[s]) for s in range(len(radices))]
            for s, row in enumerate(layout):
                for j, index in enumerate(_context_index(row, digits, s)):
                    np.add.at(counts[s][j], (held, *index, digits[s][j]), 1)
        return cls(radices, [[backed_off_table(*c) for c in stage] for stage in counts])

    def state(self) -> dict:
        """What a checkpoint stores: the radices, and the tables as `f - 1` (0..65535) in 16-bit
        integers (torch's int16, read back modulo 2^16)."""
        import torch

        return {
            "scheme": SCHEME,
            "radices": self.radices,
            "tables": [
                [torch.from_numpy((t - 1).astype(np.int32)).to(torch.int16) for t in s]
                for s in self.tables
            ],
        }

    @classmethod
    def from_state(cls, state: dict) -> EntropyModel:
        if state.get("scheme") != SCHEME:
            raise ValueError(f"entropy tables of scheme {state.get('scheme')}: upgrade codec")
        tables = [
            [t.numpy().astype(np.int64) % (1 << 16) + 1 for t in stage] for stage in state["tables"]
        ]
        return cls(state["radices"], tables)

    def max_payload(self, frames: int, channels: int, n_q: int) -> int:
        """The most bytes `encode` can write for a packet of this shape: the state (6) and at
        most one 16-bit word a symbol."""
        digits = sum(len(stage) for stage in self.radices[:n_q])
        return 6 + 2 * frames * channels * digits

    def _symbols(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Codes `[frames, channels, n_q]` -> frequency, start and stage of each symbol in
        coding order (frame, channel, stage, digit), each `[frames * channels * digits]`."""
        n_q = codes.shape[2]
        freq, start, stage_of = [], [], []
        digits = [split_digits(codes[:, :, s], self.radices[s]) for s in range(n_q)]
        for s in range(n_q):
            rows = _context_index(self.layout[s], digits, s)
            for index, digit, table, starts in zip(
                rows, digits[s], self.tables[s], self.starts[s], strict=True
            ):
                freq.append(table[(*index, digit)])
                start.append(starts[(*index, digit)])
                stage_of.append(s)
        order = lambda arrays: np.stack(arrays, -1).reshape(-1)  # noqa: E731
        return order(freq), order(start), np.array(stage_of)

    def stage_bits(self, codes: np.ndarray) -> np.ndarray:
        """Ideal bits `[n_q]` that each stage of codes `[frames, channels, n_q]` costs."""
        freq, _, stage_of = self._symbols(codes)
        bits = -np.log2(freq.reshape(-1, len(stage_of)) / TOTAL).sum(0)
        return np.bincount(stage_of, weights=bits, minlength=codes.shape[2])

    def encode(self, codes: np.ndarray) -> bytes:
        """Codes `[frames, channels, n_q]` -> the packet's payload bytes."""
        if codes.shape[2] > self.num_stages:
            raise ValueError(f"{codes.shape[2]} stages, the tables cover {self.num_stages}")
        freq, start, _ = self._symbols(codes)
        state, words = STATE_LOW, []
        limits = (freq << RENORM_SHIFT).tolist()
        for f, c, limit in zip(
            reversed(freq.tolist()), reversed(start.tolist()), reversed(limits), strict=True
        ):
            if state >= limit:
                words.append(state & WORD_MASK)
                state >>= WORD_BITS
            q, r = divmod(state, f)
            state = (q << PRECISION) + r + c
        head = state.to_bytes(5 if state < 1 << 40 else 6, "little")
        return head + struct.pack(f"<{len(words)}H", *reversed(words))

    def decode(self, data: bytes, frames: int, channels: int, n_q: int) -> np.ndarray:
        """Inverse of `encode`: payload -> codes `[frames, channels, n_q]` int64;
        EntropyCodingError for a payload these tables did not write."""
        if n_q > self.num_stages:
            raise EntropyCodingError(f"{n_q} stages, the tables cover {self.num_stages}")
        head = 5 if len(data) % 2 else 6
        state = int.from_bytes(data[:head], "little")
        if (
            len(data) < head
            or not STATE_LOW <= state < 1 << (8 * head)
            or state >> (8 * head - 8) == 0
        ):
            raise EntropyCodingError("a payload's coder state is out of range")
        words = struct.unpack_from(f"<{(len(data) - head) // 2}H", data, head)
        plan = self._decoding_plan()[:n_q]
        out, used = np.zeros((frames, channels, n_q), dtype=np.int64).tolist(), 0
        first = [list(first) for _, first, _, _ in plan]  # the time context of frame 0
        context = [list(first) for _ in range(channels)]  # per channel, per stage
        try:
            for t in range(frames):
                for ch in range(channels):
                    previous = context[ch]
                    below = plan[0][2]  # stage 0 has no stage below: zeros
                    for s, (digit_plans, _, _, masks) in enumerate(plan):
                        code, digits = 0, []
                        for (rows, prev, below_size, inner), p, b in zip(
                            digit_plans, previous[s], below, strict=True
                        ):
                            row = rows[(code * prev + p) * below_size + b]
                            slot = state & WORD_MASK
                            digit = bisect_right(row, slot) - 1
                            low = row[digit]
                            state = (row[digit + 1] - low) * (state >> PRECISION) + slot - low
                            if state < STATE_LOW:
                                state = (state << WORD_BITS) | words[used]
                                used += 1
                            digits.append(digit)
                            code += inner * digit
                        out[t][ch][s] = code
                        if masks is None:  # every digit has time and stage-below context
                            previous[s] = below = digits
                        else:
                            time_mask, next_mask = masks
                            previous[s] = [d * m for d, m in zip(digits, time_mask, strict=True)]
                            below = [d * m for d, m in zip(digits, next_mask, strict=True)]
                        if s + 1 < len(plan) and plan[s + 1][2] is not None:
                            below = plan[s + 1][2]
        except IndexError:
            raise EntropyCodingError("a payload ends before its codes") from None
        if state != STATE_LOW or used != len(words):
            raise EntropyCodingError("a payload holds more than its codes")
        return np.array(out, dtype=np.int64)

    def _decoding_plan(self) -> list:
        """Per stage: per digit (cumulative frequencies `[r + 1]` per flat context, prev size,
        below size, inner multiplier); the first frame's prev context; zeros if the stage
        takes no context from the stage below (else None); and, unless every digit has both
        contexts, the masks that zero the digits a context does not use (time, next stage)."""
        if self._plan is None:
            self._plan = []
            rows = self._decoding_rows()
            for s, row in enumerate(self.layout):
                digit_plans = [(rows[s][j], c.prev, c.below, c.inner) for j, c in enumerate(row)]
                first = [c.radix if c.prev > 1 else 0 for c in row]
                no_below = None if any(c.below > 1 for c in row) else [0] * len(row)
                time_mask = [int(c.prev > 1) for c in row]
                following = self.layout[s + 1] if s + 1 < len(self.layout) else row
                next_mask = (
                    [int(c.below > 1) for c in following]
                    if len(following) == len(row)
                    else [0] * len(row)
                )
                full = all(time_mask) and all(next_mask)
                self._plan.append(
                    (digit_plans, first, no_below, None if full else (time_mask, next_mask))
                )
        return self._plan

    def _decoding_rows(self) -> list[list[list[list[int]]]]:
        """Per stage and digit, per flat context: the cumulative frequencies `[r + 1]`."""
        rows = []
        for stage in self.starts:
            rows.append([])
            for starts in stage:
                flat = starts.reshape(-1, starts.shape[-1])
                ends = np.full((flat.shape[0], 1), TOTAL)
                rows[-1].append(np.concatenate([flat, ends], 1).tolist())
        return rows


def _context_index(
    row: list[DigitContext], digits: list[list[np.ndarray]], s: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each digit of stage `s`, its context `(inner, prev, below)`: arrays shaped like the
    digits, frames on axis 0. The first frame has no previous one."""
    out, inner = [], np.zeros_like(digits[s][0])
    for j, context in enumerate(row):
        digit = digits[s][j]
        prev = np.zeros_like(digit)
        if context.prev > 1:
            prev = np.concatenate([np.full_like(digit[:1], context.radix), digit[:-1]])
        below = digits[s - 1][j] if context.below > 1 else np.zeros_like(digit)
        out.append((inner, prev, below))
        inner = inner + digit * context.inner
    return out

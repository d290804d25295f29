"""A codec runtime without torch: the graphs `codec export` writes, run with onnxruntime and
numpy. It codes the same token files as the torch path (`codec encode/decode --backend onnx`).

    codec = OnnxCodec("exported/")                  # a directory written by `codec export`
    with codec.streaming(batch_size=1) as stream:
        codes = stream.encode(audio)                # [B, T] float32 at 16 kHz -> [B, n_q, frames]
        audio = stream.decode(codes[:, :6])         # the first 6 stages -> [B, frames * hop]

`encode` takes any number of samples and returns the frames they complete (a partial frame
waits for the next call); `decode` takes any number of frames. Both keep their streaming state
between calls, exactly as the torch model does inside `model.streaming()`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from codec.entropy import EntropyModel

FORMAT = "codec-onnx"
FILE_CHUNK_FRAMES = 50  # frames per chunk when files are coded (1 s at 50 frames/s)


def flush_length(received: int, delay: int, multiple: int) -> int:
    """Zeros to code after the last of `received` samples so that the decoder, which runs
    `delay` samples late, renders all of them, in whole `multiple`s of samples (frames, packets)."""
    return delay + (-received - delay) % multiple


class DelayTrim:
    """Drops the first `delay` samples of decoded audio that arrives in chunks `[..., T]` (the
    decoder's output from before the stream began), so the output aligns with the input."""

    def __init__(self, delay: int) -> None:
        self.late = delay

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        audio, self.late = audio[..., self.late :], max(0, self.late - audio.shape[-1])
        return audio


class OnnxCodec:
    """The exported model in `directory`: its rates, stages, weights hash and entropy tables."""

    def __init__(
        self, directory: str | Path, threads: int = 1, keep_optimised: bool = False
    ) -> None:
        self.directory = Path(directory)
        self.keep_optimised = keep_optimised  # the export cache's folders: see `session`
        manifest_path = self.directory / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"{self.directory} holds no exported model (no manifest.json): run codec export"
            )
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{manifest_path} is not a codec ONNX manifest")
        self.manifest = manifest
        self.name: str = manifest["model"]
        self.model_hash: str = manifest["model_hash"]
        self.sample_rate: int = manifest["sample_rate"]
        self.hop_length: int = manifest["hop_length"]
        self.codebook_sizes: list[int] = manifest["codebook_sizes"]
        self.delay: int = manifest.get("delay", 0)  # decoded audio runs this many samples late
        self.threads = threads
        self.entropy = self._entropy(manifest.get("entropy"))
        self._sessions: dict[tuple[str, int], object] = {}

    @property
    def num_stages(self) -> int:
        return len(self.codebook_sizes)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def bitrate(self, n_stages: int | None = None) -> float:
        """Bits per second with the first `n_stages` stages (all by default)."""
        sizes = self.codebook_sizes[: n_stages or self.num_stages]
        return self.frame_rate * sum(math.log2(k) for k in sizes)

    @property
    def chunk_frames(self) -> list[int]:
        """The chunk lengths (frames) there are graphs for."""
        return sorted(int(k) for k in self.manifest["graphs"])

    def _entropy(self, spec: dict | None) -> EntropyModel | None:
        if spec is None:
            return None
        with np.load(self.directory / spec["file"]) as data:
            tables = [
                [data[f"stage{i}_context{j}"].astype(np.int64) + 1 for j in range(count)]
                for i, count in enumerate(spec["contexts"])
            ]
        model = EntropyModel(spec["radices"], tables)
        if model.hash != spec["hash"]:
            raise ValueError(f"{self.directory}: entropy tables do not match their hash")
        return model

    def session(self, part: str, frames: int):
        """The onnxruntime session of `part` (encoder/decoder) for chunks of `frames`.

        With `keep_optimised`, the graph as onnxruntime optimises it (its portable passes) is
        kept beside the graph, per onnxruntime version: a later process builds its session from
        it in about half the time."""
        key = (part, frames)
        if key not in self._sessions:
            import onnxruntime

            path = self.directory / self.manifest["graphs"][str(frames)][part]
            optimised = path.with_suffix(f".ort-{onnxruntime.__version__}.onnx")
            if self.keep_optimised and not optimised.is_file():
                self._optimise(path, optimised)
            options = self._options()
            source = optimised if self.keep_optimised and optimised.is_file() else path
            self._sessions[key] = onnxruntime.InferenceSession(
                str(source), options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[key]

    def _options(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        return options

    def _optimise(self, graph: Path, optimised: Path) -> None:
        """Write `graph` as onnxruntime's extended (portable) passes optimise it to `optimised`,
        atomically; nothing where the folder is read-only."""
        import os
        import tempfile

        import onnxruntime

        try:
            handle, staging = tempfile.mkstemp(suffix=".onnx", dir=graph.parent)
        except OSError:
            return
        os.close(handle)
        try:
            options = self._options()
            options.graph_optimization_level = (
                onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            )
            options.optimized_model_filepath = staging
            onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            os.replace(staging, optimised)
        except OSError:
            pass
        finally:
            if os.path.exists(staging):
                os.remove(staging)

    @contextmanager
    def streaming(self, batch_size: int) -> Iterator[OnnxStream]:
        """A stream of `batch_size` channels (see the module's docstring)."""
        yield OnnxStream(self, batch_size)


class OnnxStream:
    """Streaming state of one encoder and one decoder run: see `OnnxCodec.streaming`. Whole
    chunks of the longest exported length run through its graphs, the frames left over one at
    a time through the 1-frame graphs: the states carry on exactly either way."""

    def __init__(self, codec: OnnxCodec, batch_size: int) -> None:
        self.codec, self.batch = codec, batch_size
        self.delay = codec.delay  # decoded audio runs this many samples late
        self.sizes = sorted(codec.chunk_frames, reverse=True)
        if self.sizes[-1] != 1:
            raise ValueError(f"{codec.directory} has no 1-frame graphs: export it again")
        self.encoder_state = self._zeros(codec.manifest["encoder_states"])
        self.decoder_state = self._zeros(codec.manifest["decoder_states"])
        self.pending = np.zeros((batch_size, 0), np.float32)

    def _zeros(self, specs: list[dict]) -> dict[str, np.ndarray]:
        return {  # manifests before the dtype was recorded hold float32 states only
            f"in.{s['name']}": np.zeros([self.batch, *s["shape"][1:]], s.get("dtype", "float32"))
            for s in specs
        }

    def _chunks(self, frames: int) -> Iterator[tuple[int, int]]:
        """(start, length) of the chunks that cover `frames` frames, longest first."""
        start = 0
        for size in self.sizes:
            while frames - start >= size:
                yield start, size
                start += size

    def encode(self, audio: np.ndarray, n_stages: int | None = None) -> np.ndarray:
        """`[B, T]` float32 -> codes `[B, n_stages, frames]` int64 of the frames completed; the
        samples of a partial frame wait for the next call."""
        hop = self.codec.hop_length
        audio = np.concatenate([self.pending, audio.astype(np.float32, copy=False)], axis=1)
        frames = audio.shape[1] // hop
        out = []
        for start, size in self._chunks(frames):
            feeds = {"audio": audio[:, None, start * hop : (start + size) * hop]}
            codes, *states = self.codec.session("encoder", size).run(
                None, feeds | self.encoder_state
            )
            self.encoder_state = dict(zip(self.encoder_state, states, strict=True))
            out.append(codes)
        self.pending = audio[:, frames * hop :]
        n = n_stages or self.codec.num_stages
        if not out:
            return np.zeros((self.batch, n, 0), np.int64)
        return np.concatenate(out, axis=2)[:, :n]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """codes `[B, n, frames]` (the first `n` stages) -> audio `[B, frames * hop]` float32."""
        n = codes.shape[1]
        full = np.zeros((codes.shape[0], self.codec.num_stages, codes.shape[2]), np.int64)
        full[:, :n] = codes
        stages = np.array(n, dtype=np.int64)
        out = []
        for start, size in self._chunks(codes.shape[2]):
            feeds = {"codes": full[:, :, start : start + size], "stages": stages}
            audio, *states = self.codec.session("decoder", size).run(
                None, feeds | self.decoder_state
            )
            self.decoder_state = dict(zip(self.decoder_state, states, strict=True))
            out.append(audio[:, 0])
        if not out:
            return np.zeros((codes.shape[0], 0), np.float32)
        return np.concatenate(out, axis=1)

"""ONNX export: the encoder and the decoder as graphs that each take one chunk plus explicit
streaming state and return their output plus the next state, for `codec.runtime`.

Per direction there is one graph per chunk length: 1 frame (20 ms, live streaming) and
`FILE_CHUNK_FRAMES` frames (files). A chunk's length is fixed in its graph, so every state has
a fixed shape; the batch is dynamic. The decoder takes the codes of every stage and the number
of stages to use as an input (the unused stages' codes are ignored), so one decoder serves every
bitrate; the encoder returns every stage (the first `n` are what an `n`-stage encoding keeps).
Weight norm is folded. `manifest.json` beside the graphs holds what a runtime needs: rates,
stage sizes, the state tensors' names and shapes, the model's name and weights hash (the hash
token files record), and the entropy-coding tables (`entropy.npz`).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from codec.model import CodecModel
from codec.runtime import FILE_CHUNK_FRAMES
from codec.streaming import StreamingModule

MANIFEST_VERSION = 1
LIVE_CHUNK_FRAMES = 1
OPSET = 17


def _stateful_layers(part: nn.Module) -> list[StreamingModule]:
    """The layers of `part` that carry history between chunks (in module order)."""
    layers = []
    for module in part.modules():
        if isinstance(module, StreamingModule):
            state = module.init_state(1)
            if state is not None and all(t.shape[-1] > 0 for t in _tensors(state)):
                layers.append(module)
    return layers


def _tensors(state) -> list[Tensor]:
    return [getattr(state, f.name) for f in dataclasses.fields(state)]


class _Step(nn.Module):
    """One chunk through `run`, with the state of `layers` given as inputs and returned."""

    def __init__(self, model: CodecModel, part: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.layers = _stateful_layers(part)

    def state_specs(self) -> list[dict]:
        """Name, shape (batch first, as -1) and dtype of each state tensor."""
        names = {module: name for name, module in self.model.named_modules()}
        specs = []
        for layer in self.layers:
            state = layer.init_state(1)
            for field, tensor in zip(dataclasses.fields(state), _tensors(state), strict=True):
                specs.append({
                    "name": f"{names[layer]}.{field.name}",
                    "shape": [-1, *tensor.shape[1:]],
                    "dtype": str(tensor.dtype).removeprefix("torch."),
                })  # fmt: skip
        return specs

    def _run(self, run, x: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        for layer, state in zip(self.layers, states, strict=True):
            layer._streaming = True
            layer._state = type(layer.init_state(1))(state)
        try:
            y = run(x)
            return (y, *(t for layer in self.layers for t in _tensors(layer.state)))
        finally:
            for layer in self.layers:
                layer._streaming, layer._state = False, None


class EncoderStep(_Step):
    """`(audio [B, 1, k * hop], *states) -> (codes [B, n_q, k] int64, *next_states)`."""

    def __init__(self, model: CodecModel) -> None:
        super().__init__(model, model.encoder)

    def forward(self, audio: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        return self._run(
            lambda x: self.model.quantizer.encode(self.model.encoder(x)), audio, states
        )


class DecoderStep(_Step):
    """`(codes [B, n_q, k] int64, stages [] int64, *states) -> (audio [B, 1, k * hop],
    *next_states)`: stages past `stages` are ignored (their contribution is multiplied by 0)."""

    def __init__(self, model: CodecModel) -> None:
        super().__init__(model, model.decoder)

    def forward(self, codes: Tensor, stages: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        def run(c: Tensor) -> Tensor:
            latent = 0
            for i, stage in enumerate(self.model.quantizer.stages):
                latent = latent + stage.decode(c[:, i]) * (stages > i).to(torch.float32)
            return self.model.decoder(latent)

        return self._run(run, codes, states)


def _export(step: _Step, example: tuple[Tensor, ...], inputs: list[str], path: Path) -> None:
    states = step.state_specs()
    names = [*inputs, *(f"in.{s['name']}" for s in states)]
    outputs = ["audio" if inputs[0] == "codes" else "codes", *(f"out.{s['name']}" for s in states)]
    zeros = tuple(torch.zeros(1, *s["shape"][1:], dtype=getattr(torch, s["dtype"])) for s in states)
    batch = {name: {0: "batch"} for name in [*names, *outputs] if name != "stages"}
    with torch.enable_grad(), warnings.catch_warnings():  # torch's own kernels: free batch
        warnings.simplefilter("ignore")  # the tracer's notes on shapes fixed per chunk length
        torch.onnx.export(
            step, (*example, *zeros), str(path), input_names=names, output_names=outputs,
            dynamic_axes=batch, opset_version=OPSET, dynamo=False,
        )  # fmt: skip


def export_model(model: CodecModel, name: str, out: Path) -> Path:
    """Write the graphs, `entropy.npz` and `manifest.json` for `model` (token files name it
    `name`) into `out`; returns the manifest's path."""
    model = model.eval()
    model.set_weight_norm(False)
    out.mkdir(parents=True, exist_ok=True)
    hop, n_q = model.hop_length, model.num_stages
    encoder, decoder = EncoderStep(model), DecoderStep(model)
    graphs = {}
    for frames in sorted({LIVE_CHUNK_FRAMES, FILE_CHUNK_FRAMES}):
        audio = torch.zeros(1, 1, frames * hop)
        codes = torch.zeros(1, n_q, frames, dtype=torch.long)
        files = {"encoder": f"encoder_{frames}.onnx", "decoder": f"decoder_{frames}.onnx"}
        _export(encoder, (audio,), ["audio"], out / files["encoder"])
        _export(decoder, (codes, torch.tensor(n_q)), ["codes", "stages"], out / files["decoder"])
        graphs[str(frames)] = files
    manifest = {
        "format": "codec-onnx",
        "version": MANIFEST_VERSION,
        "model": name,
        "model_hash": model.weights_hash(),
        "sample_rate": model.sample_rate,
        "hop_length": hop,
        "delay": model.delay,
        "codebook_sizes": model.quantizer.codebook_sizes,
        "graphs": graphs,
        "encoder_states": encoder.state_specs(),
        "decoder_states": decoder.state_specs(),
        "entropy": None,
    }
    if model.entropy is not None:
        tables = model.entropy.tables  # frequencies 1..2^16, stored as f - 1 in 16 bits
        np.savez_compressed(
            out / "entropy.npz",
            **{
                f"stage{i}_context{j}": (table - 1).astype(np.uint16)
                for i, stage in enumerate(tables)
                for j, table in enumerate(stage)
            },
        )
        manifest["entropy"] = {
            "file": "entropy.npz",
            "radices": model.entropy.radices,
            "contexts": [len(stage) for stage in tables],
            "hash": model.entropy.hash,
        }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path

"""The training loop: data, losses, optimisation, validation, checkpoints, resume, DDP."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from codec.data.crops import CropBatches, CropSettings
from codec.data.kaldi import load_utterance, read_data_dir, sample_audio, validate_data_dir
from codec.data.memory import MemoryCrops, bank_bytes, load_bank
from codec.model import CodecModel, checkpoint_weights
from codec.spectral import MultiScaleMelDistance
from codec.train.checkpoint import (
    DECAY_START,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from codec.train.config import ExperimentConfig, save_experiment
from codec.train.discriminators import (
    Discriminators,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    split_batch,
)
from codec.train.losses import multi_resolution_stft_loss
from codec.train.timing import PhaseTimer

OWNED = (
    "checkpoints",
    "log",
    "tensorboard",
    "model.ckpt",
    "config.yaml",
)  # what --overwrite removes
VALID_MAX_SECONDS = 10.0


def prepare_experiment_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an existing experiment unless resuming or overwriting (which removes only what a
    run writes)."""
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise FileExistsError(
            f"{out} exists: pass --resume to continue it or --overwrite to start again"
        )
    if overwrite and not resume:
        for name in OWNED:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    (out / "log").mkdir(parents=True, exist_ok=True)


def init_distributed() -> tuple[int, int, torch.device]:
    """Rank, world size and device, from torchrun's environment (one process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device


def run_progress(step: int, warmup: int, total: int, time_used: float = 0.0) -> float:
    """How far past the warm-up a run is, 0 to 1: by steps towards `total`, or by the share of
    a wall-clock budget spent (`time_used`), whichever is further."""
    return min(1.0, max((step - warmup) / max(1, total - warmup), time_used))


def lr_factor(
    step: int, warmup: int, total: int, floor: float, time_used: float = 0.0, decay: float = 1.0
) -> float:
    """Linear warm-up to 1 over `warmup` steps, held at 1, then a cosine decay to `floor` over
    the last `decay` share of the run (1: the whole run, a plain cosine; less: warm-up, stable,
    decay). The run ends at `total` steps or when the wall-clock budget is spent."""
    if step < warmup:
        return (step + 1) / warmup
    progress = run_progress(step, warmup, total, time_used)
    into_decay = max(0.0, progress - (1 - decay)) / decay
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * into_decay))


def carry_moments(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load a saved optimizer state's per-parameter moments, keeping `optimizer`'s own
    hyperparameters (learning rate, betas, weight decay): the run's config decides those."""
    own = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, settings in zip(optimizer.param_groups, own, strict=True):
        group.update(settings)


def now() -> float:
    """Seconds on the clock that time budgets and throughput are measured with (monotonic)."""
    return time.perf_counter()


def parameter_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class Trainer:
    """Trains `CodecModel` from a resolved `ExperimentConfig` on Kaldi data directories."""

    def __init__(
        self, cfg: ExperimentConfig, train_data: Path, valid_data: Path | None, out: Path
    ) -> None:
        self.cfg, self.out = cfg, out
        self.rank, self.world, self.device = init_distributed()
        self.is_main = self.rank == 0
        torch.manual_seed(cfg.train.seed)
        for data in (train_data, valid_data):
            if data is not None:
                validate_data_dir(data)  # unreadable files, empty audio, unusable rates: stop now
        self.train_utts = read_data_dir(train_data)
        self.valid_utts = (
            read_data_dir(valid_data)[: cfg.train.valid_utterances] if valid_data else []
        )
        self.model = CodecModel(cfg.model, name=out.name).to(self.device)
        self.ddp = DistributedDataParallel(self.model) if self.world > 1 else self.model
        opt = cfg.optim
        self.elapsed = 0.0  # wall-clock seconds of training so far, over resumes
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), opt.lr, tuple(opt.betas), weight_decay=opt.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(
                s,
                cfg.train.warmup_steps,
                cfg.train.max_steps,
                opt.min_lr_ratio,
                self.time_used,
                opt.decay_fraction,
            ),
        )
        self.mel = MultiScaleMelDistance(cfg.model.sample_rate).to(self.device)
        self.stft = multi_resolution_stft_loss().to(self.device)
        self.adversarial = cfg.train.losses.adversarial > 0
        if self.adversarial:
            d = cfg.train.discriminator
            self.disc = Discriminators(d.periods, d.n_ffts, d.stft_channels).to(self.device)
            self.disc_ddp = DistributedDataParallel(self.disc) if self.world > 1 else self.disc
            self.disc_optimizer = torch.optim.AdamW(
                self.disc.parameters(), opt.discriminator_lr, tuple(opt.betas)
            )
        self.ema = (
            {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            if cfg.train.ema_decay
            else None
        )
        self.step = 0
        self.writer = None
        self.timer = PhaseTimer(self.device)
        self.autocast = (
            partial(torch.autocast, "cuda", dtype=torch.bfloat16)
            if self.device.type == "cuda" and cfg.train.amp
            else nullcontext
        )

    @property
    def time_used(self) -> float:
        """The share of the wall-clock budget spent (0 without a budget)."""
        budget = self.cfg.train.max_minutes * 60
        return self.elapsed / budget if budget > 0 else 0.0

    # ---- state -------------------------------------------------------------------------------
    def state(self) -> dict:
        state = {
            "step": self.step,
            "elapsed": self.elapsed,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "ema": self.ema,
        }
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.adversarial:
            state["discriminators"] = self.disc.state_dict()
            state["disc_optimizer"] = self.disc_optimizer.state_dict()
        return state

    def restore(self, state: dict) -> None:
        self.step = state["step"]
        self.elapsed = state.get("elapsed", 0.0)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_torch"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        self.ema = state["ema"]
        if self.adversarial and "discriminators" in state:
            self.disc.load_state_dict(state["discriminators"])
            self.disc_optimizer.load_state_dict(state["disc_optimizer"])
        elif self.adversarial:  # switched on for the rest of a run that trained without them
            self.log("the checkpoint has no discriminators: they start fresh")

    def initialise_from(self, path: Path) -> None:
        """Start from the model weights of `path` (a training checkpoint or a `model.ckpt`),
        with a fresh schedule and step count: fine-tuning or a new learning rate. The optimizer
        is fresh too, unless `train.init_optimizer` carries the checkpoint's AdamW moments (and
        its discriminators, in an adversarial run): a continuation, such as the next campaign
        round from the previous one's `DECAY_START`. `train.init_modules` copies only those
        parts; the others keep their fresh initialisation."""
        state = load_checkpoint(path)
        if "optimizer" in state:
            weights = state["model"]
        else:  # a model file, maybe a warm start with int8 weights
            weights = checkpoint_weights(state, self.model) if "state_dict" in state else None
        if not isinstance(weights, dict):
            raise ValueError(f"{path} holds no model weights")
        if self.cfg.train.init_optimizer:
            if "optimizer" not in state:
                raise ValueError(
                    f"train.init_optimizer: {path} holds no optimizer state; give a training "
                    "checkpoint (EXP/checkpoints/*.pt) or leave train.init_optimizer off"
                )
            carry_moments(self.optimizer, state["optimizer"])
            if self.adversarial and "discriminators" in state:
                self.disc.load_state_dict(state["discriminators"])
                carry_moments(self.disc_optimizer, state["disc_optimizer"])
        target = self.model.state_dict()
        for key in [k for k in weights if k not in target]:  # folded weights of a `model.ckpt`
            stem = key.removesuffix(".weight")
            if f"{stem}.parametrizations.weight.original0" in target:
                weight = weights.pop(key)
                norm = weight.flatten(1).norm(dim=1).view(-1, *[1] * (weight.dim() - 1))
                weights[f"{stem}.parametrizations.weight.original0"] = norm
                weights[f"{stem}.parametrizations.weight.original1"] = weight
        if parts := self.cfg.train.init_modules:
            weights = target | {k: v for k, v in weights.items() if k.split(".")[0] in parts}
        self.model.load_state_dict(weights)  # copies in place: the optimizer keeps its tensors
        if self.ema is not None:
            self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # ---- logging -----------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.is_main:
            with open(self.out / "log" / "train.log", "a") as stream:
                stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def scalars(self, values: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, self.step)

    # ---- one step ----------------------------------------------------------------------------
    def train_step(self, wav: Tensor) -> dict[str, Tensor | float]:
        """One optimisation step on `[B, 1, T]`; the networks run under bf16 autocast on CUDA
        (`train.amp`), spectrogram losses and STFTs in fp32. Phases are timed by `self.timer`."""
        w = self.cfg.train.losses
        with self.timer("forward"), self.autocast():
            out = self.ddp(wav)
        with self.timer("losses"):
            recon = out.audio.float()
            losses = {"mel": self.mel(recon, wav)}
            total = w.mel * losses["mel"]
            if w.stft:  # a weight of 0 spares its STFTs
                losses["stft"] = self.stft(recon, wav)
                total = total + w.stft * losses["stft"]
            if w.waveform:
                losses["waveform"] = (recon - wav).abs().mean()
                total = total + w.waveform * losses["waveform"]
            losses |= {f"quantizer/{k}": v for k, v in out.losses.items()}
            total = total + w.quantizer * sum(
                out.losses.values(), torch.zeros((), device=wav.device)
            )
        if self.adversarial and self.step >= w.adversarial_start:
            # one discriminator pass over real and reconstructed audio together (DDP wants one
            # forward per backward), for the discriminator's step and then the generator's loss
            with self.timer("discriminator"):
                self.disc_optimizer.zero_grad(set_to_none=True)
                with self.autocast():
                    judged = self.disc_ddp(torch.cat([wav, recon.detach()]))
                d_loss = discriminator_loss(*split_batch(judged, len(wav)))
                d_loss.backward()
                self.disc_optimizer.step()
                with self.autocast():
                    real, fake = split_batch(self.disc_ddp(torch.cat([wav, recon])), len(wav))
                losses["adversarial"] = generator_loss(fake)
                losses["feature_matching"] = feature_matching_loss(real, fake)
                losses["discriminator"] = d_loss.detach()
                total = (
                    total
                    + w.adversarial * losses["adversarial"]
                    + w.feature_matching * losses["feature_matching"]
                )
        with self.timer("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
        with self.timer("optimizer"):
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                decay = self.cfg.train.ema_decay
                for key, value in self.model.state_dict().items():
                    if value.dtype.is_floating_point:
                        self.ema[key].lerp_(value.detach(), 1 - decay)
                    else:
                        self.ema[key].copy_(value)
        # tensors, not floats: reading a value waits for the device, so only logged steps do
        values = {f"loss/{k}": v.detach() for k, v in losses.items()}
        values |= {"loss/total": total.detach(), "grad_norm": norm.detach()}
        values |= {"lr": self.scheduler.get_last_lr()[0]}
        values |= {f"quantizer/{k}": v for k, v in out.stats.items()}
        return values

    # ---- validation --------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mel distance, PESQ-WB and STOI of full-rate reconstructions of held-out utterances."""
        from codec.eval.metrics import mel_distance, pesq_wb, stoi

        if not self.valid_utts or not self.is_main:
            return {}
        uncompiled = [s for s in self.model.quantizer.vp_stages if not s.compiled]
        if uncompiled:
            self.log("validation skipped: VP codebooks are compiled at the end of training")
            return {}
        self.model.eval()
        scores: dict[str, list[float]] = {"mel_distance": [], "pesq_wb": [], "stoi": []}
        rate = self.cfg.model.sample_rate
        for utt in self.valid_utts:
            ref = load_utterance(utt, rate).mean(axis=0)[: int(VALID_MAX_SECONDS * rate)]
            hyp = self.model.decode(
                self.model.encode(torch.from_numpy(ref).view(1, 1, -1).to(self.device))
            )
            hyp = hyp.view(-1)[: len(ref)].float().cpu().numpy()
            scores["mel_distance"].append(mel_distance(ref, hyp, rate))
            for name, fn in (("pesq_wb", pesq_wb), ("stoi", stoi)):
                try:
                    scores[name].append(fn(ref, hyp, rate))
                except Exception:  # noqa: BLE001, S112  (PESQ finds no speech in a short clip)
                    continue
            if self.writer is not None and utt is self.valid_utts[0]:
                self.writer.add_audio("valid/reconstruction", hyp, self.step, rate)
        self.model.train()
        return {f"valid/{k}": float(np.mean(v)) for k, v in scores.items() if v}

    # ---- the run -----------------------------------------------------------------------------
    def in_memory(self) -> bool:
        """Whether the corpus is held in memory (`train.data`; `auto`: when it fits
        `train.memory_gb`)."""
        choice = self.cfg.train.data
        if choice not in ("auto", "memory", "disk"):
            raise ValueError(f"train.data must be auto, memory or disk, not {choice!r}")
        if choice == "auto":
            size = bank_bytes(self.train_utts, self.cfg.model.sample_rate)
            return size <= self.cfg.train.memory_gb * 2**30
        return choice == "memory"

    def batches(self, start: int) -> Iterator[Tensor]:
        """Batches `[B, 1, segment]` for steps `start`, `start + 1`, ... up to `max_steps`, cut
        on the device from the corpus in memory or read from disk by a DataLoader."""
        cfg, rate = self.cfg.train, self.cfg.model.sample_rate
        segment = round(cfg.segment_seconds * rate)
        segment -= segment % self.model.hop_length
        steps = range(start, cfg.max_steps)
        crop = CropSettings(
            cfg.batch_size, segment, cfg.seed, self.rank, cfg.loudness_db, cfg.gain_jitter_db
        )
        if self.in_memory():
            bank = load_bank(self.train_utts, rate, cfg.num_workers, progress=self.is_main)
            self.log(f"training audio in memory: {bank.seconds / 3600:.2f} h on {self.device}")
            crops = MemoryCrops(bank.to(self.device), crop)
            return map(crops.batch, steps)
        # its own generator: drawing a worker seed from the global RNG would shift it on resume
        generator = torch.Generator().manual_seed(cfg.seed)
        dataset = CropBatches(self.train_utts, rate, crop)
        return iter(
            DataLoader(
                dataset, None, sampler=steps, num_workers=cfg.num_workers, generator=generator
            )
        )

    def checkpoint(self, name: str | None = None) -> None:
        digests = [parameter_digest(self.model)]
        if self.world > 1:
            gathered = [None] * self.world
            dist.all_gather_object(gathered, digests[0])
            digests = gathered
        if self.is_main:
            agree = "yes" if len(set(digests)) == 1 else f"NO ({digests})"
            directory, keep = self.out / "checkpoints", self.cfg.train.keep_checkpoints
            save_checkpoint(directory, self.step, self.state(), keep, name)
            what = name or "checkpoint"
            self.log(f"step {self.step}: {what} written; replicas identical: {agree}")

    def run(self, resume: bool, init_from: Path | None = None) -> Path:
        from tqdm import tqdm

        cfg = self.cfg.train
        if resume and (latest := latest_checkpoint(self.out / "checkpoints")) is not None:
            self.restore(load_checkpoint(latest))
            self.log(f"resumed from {latest.name} at step {self.step}")
        elif init_from is not None:
            self.initialise_from(init_from)
            self.log(f"weights initialised from {init_from}")
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            save_experiment(self.cfg, self.out / "config.yaml")
            (self.out / "log" / "command.txt").write_text(" ".join(sys.argv) + "\n")
            self.writer = SummaryWriter(str(self.out / "tensorboard"))
        where = f"{self.world} process(es), {self.device}"
        budget = f" or {cfg.max_minutes:g} minutes" if cfg.max_minutes > 0 else ""
        self.log(f"training from step {self.step} to {cfg.max_steps}{budget} on {where}")
        self.model.train()
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.step,
            desc="train",
            disable=None if self.is_main else True,  # a terminal only, not in log files
            file=sys.stderr,
        )
        audio_seconds, started = 0.0, now()
        clock = started - self.elapsed  # the budget counts the time of earlier runs too
        batches, stop = self.batches(self.step), self.out_of_time()
        decay_kept = self.cfg.optim.decay_fraction >= 1 or self.rank_zeros(
            (self.out / "checkpoints" / DECAY_START).exists()
        )  # a whole-run cosine has no stable part to continue from
        while not stop:
            if not decay_kept and self.decay_begins():
                self.checkpoint(DECAY_START)  # where a continuation of this run starts
                decay_kept = True
            logged = (self.step + 1) % cfg.log_every == 0 or self.step + 1 == cfg.max_steps
            self.model.quantizer.report_stats(logged)
            with self.timer("data"):
                wav = next(batches, None)
            if wav is None:
                break
            values = self.train_step(wav.to(self.device, non_blocking=True))
            self.step += 1
            self.elapsed = now() - clock
            stop = self.out_of_time()
            audio_seconds += wav.shape[0] * wav.shape[-1] / self.cfg.model.sample_rate * self.world
            speed = audio_seconds / (now() - started)
            bar.update()
            if logged or stop:
                values = {k: float(v) for k, v in values.items()}
                bar.set_postfix(loss=f"{values['loss/total']:.3f}", audio_s_per_s=f"{speed:.1f}")
                self.scalars(values | {"throughput/audio_seconds_per_second": speed})
                self.log(
                    f"step {self.step}: "
                    + " ".join(f"{k}={v:.4g}" for k, v in values.items() if k.startswith("loss/"))
                )
            if self.step % cfg.valid_every == 0:
                self.report_validation()
            if self.step % cfg.checkpoint_every == 0 and self.step < cfg.max_steps and not stop:
                self.checkpoint()  # the last step's checkpoint is `finish`'s
        bar.close()
        self.model.quantizer.report_stats(True)
        if self.step < cfg.max_steps:
            self.log(f"step {self.step}: the {cfg.max_minutes:g}-minute budget is spent")
        return self.finish()

    def out_of_time(self) -> bool:
        """Whether the wall-clock budget is spent."""
        return self.cfg.train.max_minutes > 0 and self.rank_zeros(self.time_used >= 1)

    def decay_begins(self) -> bool:
        """Whether the learning rate's decay (the last `optim.decay_fraction` of the run) has
        begun."""
        cfg, decay = self.cfg.train, self.cfg.optim.decay_fraction
        progress = run_progress(self.step, cfg.warmup_steps, cfg.max_steps, self.time_used)
        return self.rank_zeros(progress >= 1 - decay)

    def rank_zeros(self, flag: bool) -> bool:
        """Rank 0's `flag`, on every process: decisions on the clock follow one clock, so that
        all processes stop or save after the same step."""
        if self.world > 1:
            tensor = torch.tensor(float(flag), device=self.device)
            dist.broadcast(tensor, 0)
            flag = bool(tensor)
        return flag

    def report_validation(self) -> None:
        values = self.validate()
        if values:
            self.scalars(values)
            self.log(f"step {self.step}: " + " ".join(f"{k}={v:.4f}" for k, v in values.items()))

    def finish(self) -> Path:
        """Last checkpoint; EMA weights if kept; VP codebooks compiled; entropy tables fitted;
        the final model.ckpt."""
        self.checkpoint()
        if self.ema is not None:
            self.model.load_state_dict(self.ema)
        if self.model.quantizer.vp_stages:
            self.compile_codebooks()
        if self.is_main:
            self.fit_entropy()
        if (
            self.ema is not None
            or self.model.quantizer.vp_stages
            or self.step % self.cfg.train.valid_every
        ):
            self.report_validation()  # the final model differs from the last one validated
        path = self.out / "model.ckpt"
        if self.is_main:
            self.model.save(path)
            self.log(f"final model written to {path}")
        if self.writer is not None:
            self.writer.close()
        return path

    def training_audio(self, budget: float) -> Iterator[Tensor]:
        """Training utterances `[C, 1, T]` in a fixed shuffled order, up to `budget` seconds."""
        rate, seed = self.cfg.model.sample_rate, self.cfg.train.seed
        for wav in sample_audio(self.train_utts, rate, budget, seed):
            yield torch.from_numpy(wav)[:, None]

    def compile_codebooks(self) -> None:
        budget = self.cfg.train.compile_seconds
        self.model.eval().compile_codebooks(self.training_audio(budget))
        self.model.train()
        self.log(f"VP codebooks compiled on up to {budget:.0f} s of training audio")

    def fit_entropy(self) -> None:
        budget = self.cfg.train.entropy_seconds
        entropy = self.model.eval().fit_entropy(self.training_audio(budget))
        self.model.train()
        self.log(f"entropy tables {entropy.hash} fitted on up to {budget:.0f} s of training audio")


def train(
    cfg: ExperimentConfig,
    train_data: Path,
    valid_data: Path | None,
    out: Path,
    resume: bool = False,
    overwrite: bool = False,
    init_from: Path | None = None,
) -> Path:
    """Train a model; returns the path of the final `model.ckpt`. `init_from` starts from the
    weights of another checkpoint (ignored when resuming from this run's own checkpoints)."""
    if init_from is not None and not Path(init_from).is_file():
        raise FileNotFoundError(f"--init-from: no checkpoint at {init_from}")
    if int(os.environ.get("RANK", "0")) == 0:
        prepare_experiment_dir(out, resume, overwrite)
    return Trainer(cfg, train_data, valid_data, out).run(resume, init_from)

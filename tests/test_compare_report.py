"""recipes/utils/compare_report.py: per-family means, seed noise, stability and one figure per
family, from experiment folders shaped as egs/mini/run_compare.sh leaves them."""

import json
import subprocess
import sys
from pathlib import Path

import yaml
from torch.utils.tensorboard import SummaryWriter

REPORT = Path(__file__).parents[1] / "recipes" / "utils" / "compare_report.py"


def fake_run(root: Path, run: str, pesq: dict[str, float], spike_at: int | None = None) -> None:
    """An experiment folder: config, TensorBoard scalars and stage 6's scores."""
    exp = root / f"codec_compare_{run}"
    config = {"train": {"batch_size": 8, "segment_seconds": 1.0, "warmup_steps": 100}}
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    writer = SummaryWriter(str(exp / "tensorboard"))
    for step in range(50, 1001, 50):
        writer.add_scalar("loss/mel", 1.0 - step / 2000, step)
        writer.add_scalar("grad_norm", 10.0 if step == spike_at else 1.0, step)
        writer.add_scalar("throughput/audio_seconds_per_second", 4.0, step)
        for stage in range(2):
            writer.add_scalar(f"quantizer/stage{stage}/perplexity", 100.0 + stage * 100, step)
            if run.startswith("vq"):
                writer.add_scalar(f"quantizer/stage{stage}/dead_codes", 3.0, step)
            if run.startswith("vp"):
                writer.add_scalar(f"quantizer/stage{stage}/acceptance", 0.25 + stage / 2, step)
    writer.close()
    for kbps, value in pesq.items():
        scores = exp / f"decode_{kbps}kbps" / "test" / "scores"
        scores.mkdir(parents=True)
        summary = {"pesq_wb": {"mean": value}, "stoi": {"mean": 0.9}, "estoi": {"mean": 0.8},
                   "mel_distance": {"mean": 0.3}, "f0_rmse_cents": {"mean": 40.0}}  # fmt: skip
        (scores / "summary.json").write_text(json.dumps(summary))
        stages = [{"stage": i + 1, "utilisation": 0.5, "perplexity_ratio": 0.2} for i in range(2)]
        (scores / "tokens.json").write_text(json.dumps({"stages": stages}))


def test_report_gives_family_means_seed_noise_stability_and_a_figure_per_family(tmp_path):
    fake_run(tmp_path, "fsp_s0", {"0.5": 1.2, "2": 1.6}, spike_at=500)
    fake_run(tmp_path, "fsp_s1", {"0.5": 1.3, "2": 1.8})
    fake_run(tmp_path, "vq_s0", {"0.5": 1.1, "2": 1.5})
    fake_run(tmp_path, "vq_s1", {"0.5": 1.1, "2": 1.55})
    fake_run(tmp_path, "vp_s0", {"0.5": 1.1, "2": 1.5}, spike_at=100)  # in the warm-up: no spike
    plots = tmp_path / "plots"
    exps = sorted(str(p) for p in tmp_path.glob("codec_compare_*"))
    done = subprocess.run(
        [sys.executable, str(REPORT), *exps, "--plots", str(plots)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # family means over the two seeds, and the seed noise: the larger of the two families' spreads
    assert "| fsp | 2 | 2 | 1.700 | 0.900 | 0.800 | 0.300 | 40.000 |" in lines
    assert "| vq | 0.5 | 2 | 1.100 | 0.900 | 0.800 | 0.300 | 40.000 |" in lines
    assert "| seed noise | 2 | - | 0.200 | 0.000 | 0.000 | 0.000 | 0.000 |" in lines
    assert "| seed noise | 0.5 | - | 0.100 | 0.000 | 0.000 | 0.000 | 0.000 |" in lines
    # paired by seed against VQ: fsp_s1 - vq_s1 at 2 kbps; vp_s0 has its pair, nothing for s1
    assert "| fsp_s1 | 2 | +0.250 | +0.000 | +0.000 | +0.000 | +0.000 |" in lines
    assert "| vp_s0 | 2 | +0.000 | +0.000 | +0.000 | +0.000 | +0.000 |" in lines
    assert not any(line.startswith("| vq_s0 | 2 | +") for line in lines)
    # stability after the warm-up (steps 150-1000; 2 s a step): one spike in fsp_s0 only;
    # perplexity a mean over stages; VP acceptance a mean over stages and logged steps
    fsp_s0 = next(line for line in lines if line.startswith("| fsp_s0 | 1000 |"))
    assert fsp_s0.split(" | ")[2:] == ["2.00", "0.500", "0.925", "1.00", "10.00", "1", "150",
                                       "150", "-", "n/a |"]  # fmt: skip
    vp_s0 = next(line for line in lines if line.startswith("| vp_s0 | 1000 |"))
    assert vp_s0.split(" | ")[7] == "0" and vp_s0.split(" | ")[-1] == "0.50 |"
    vq_s1 = next(line for line in lines if line.startswith("| vq_s1 | 1000 |"))
    assert vq_s1.split(" | ")[7] == "0" and vq_s1.split(" | ")[10] == "120"  # 20 logs x 2 x 3
    assert sorted(p.name for p in plots.iterdir()) == ["fsp.png", "vp.png", "vq.png"]
    assert all(p.stat().st_size > 10_000 for p in plots.iterdir())

"""DDP with 2 CPU processes (gloo): VP queues and codebooks, VQ codebooks agree across ranks."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import codec

WORLD = 2
KINDS = {
    "vp": {
        "model.quantizer.kind": "vp",
        "model.quantizer.dim": 2,
        "model.quantizer.codebook_size": 16,
    },
    "vq": {
        "model.quantizer.kind": "vq",
        "model.quantizer.dim": 2,
        "model.quantizer.codebook_size": 16,
    },
}


def _train_on_rank(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    for kind, overrides in KINDS.items():
        torch.manual_seed(0)  # the same initial model on every rank
        model = codec.build_model("tiny", **overrides).train()
        start = {k: v.clone() for k, v in model.state_dict().items()}
        # buffers are not broadcast by DDP here: agreement must come from the quantizers' own sync
        ddp = DistributedDataParallel(model, broadcast_buffers=False)
        opt = torch.optim.Adam(ddp.parameters(), lr=1e-3)
        torch.manual_seed(100 + rank)  # different data and random draws on each rank
        for _ in range(4):
            out = ddp(0.1 * torch.randn(2, 1, 3200))
            loss = out.audio.pow(2).mean() + sum(out.losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        if kind == "vp":
            model.eval().compile_codebooks(
                [0.1 * torch.randn(2, 1, 3200)]
            )  # each rank its own audio
        torch.save({"start": start, "end": model.state_dict()}, f"{out_dir}/{kind}_{rank}.pt")
    dist.destroy_process_group()


def test_two_process_training_keeps_replicas_and_quantizer_state_identical(tmp_path):
    mp.spawn(_train_on_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    for kind in KINDS:
        ranks = [torch.load(tmp_path / f"{kind}_{r}.pt", weights_only=True) for r in range(WORLD)]
        end0, end1 = ranks[0]["end"], ranks[1]["end"]
        assert end0.keys() == end1.keys()
        for key in end0:
            assert torch.equal(end0[key], end1[key]), f"{kind}: {key} differs between ranks"
        state_keys = [k for k in end0 if k.endswith(("queue", "codebook"))]
        assert state_keys
        for key in state_keys:  # the state really moved: agreement is not just the shared start
            assert not torch.equal(ranks[0]["start"][key], end0[key]), (
                f"{kind}: {key} never changed"
            )
    vp_end = torch.load(tmp_path / "vp_0.pt", weights_only=True)["end"]
    assert all(vp_end[k] for k in vp_end if k.endswith("compiled"))

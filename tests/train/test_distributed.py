"""Distributed-aware pieces in a real 2-process gloo group (CPU) equal the single-process
result on the concatenated batch: DINO center, Sinkhorn-Knopp, iBOT center, KoLeo gather."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dinodiag.train import distributed
from dinodiag.train.losses.dino import DINOLoss, sinkhorn_knopp
from dinodiag.train.losses.ibot import IBOTPatchLoss
from dinodiag.train.losses.koleo import KoLeoLoss, nearest_neighbour_distances

WORLD = 2
K = 12


def _data() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "teacher": torch.randn(2 * 8, K, generator=gen),  # 8 rows per rank
        "patches": torch.randn(3 + 5, K, generator=gen),  # 3 masked rows on rank 0, 5 on rank 1
        "features": torch.randn(2 * 6, 10, generator=gen),  # 6 rows per rank
    }


def _worker(rank: int, store: str) -> None:
    torch.set_num_threads(1)
    data = _data()
    # single-process references on the whole batch (before the group exists)
    assert not distributed.is_distributed()
    ref_center = DINOLoss(K)
    ref_center.update_center(data["teacher"])
    ref_sinkhorn = sinkhorn_knopp(data["teacher"], teacher_temp=0.1)
    ref_patch = IBOTPatchLoss(K)
    ref_patch.update_center(data["patches"])
    x = torch.nn.functional.normalize(data["features"], dim=-1)
    ref_koleo = -torch.log(nearest_neighbour_distances(x)[rank * 6 : (rank + 1) * 6] + 1e-8).mean()

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        assert distributed.world_size() == WORLD and distributed.rank() == rank
        rows = slice(rank * 8, (rank + 1) * 8)
        loss = DINOLoss(K)
        loss.update_center(data["teacher"][rows])
        assert torch.allclose(loss.center, ref_center.center, atol=1e-6)
        local = sinkhorn_knopp(data["teacher"][rows], teacher_temp=0.1)
        assert torch.allclose(local, ref_sinkhorn[rows], atol=1e-5)
        patch_rows = slice(0, 3) if rank == 0 else slice(3, 8)
        patch = IBOTPatchLoss(K)
        patch.update_center(data["patches"][patch_rows])
        assert torch.allclose(patch.center, ref_patch.center, atol=1e-6)
        features = data["features"][rank * 6 : (rank + 1) * 6].clone().requires_grad_(True)
        gathered = KoLeoLoss(gather_distributed=True)(features)
        assert torch.allclose(gathered, ref_koleo, atol=1e-5)
        gathered.backward()
        assert features.grad is not None and torch.isfinite(features.grad).all()
        local_only = KoLeoLoss()(data["features"][rank * 6 : (rank + 1) * 6])
        assert not torch.allclose(local_only, gathered)  # local batch: fewer candidates
        distributed.barrier()
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_matches_single_process(tmp_path: Path) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(str(tmp_path / "store"),), nprocs=WORLD, join=True)


def test_helpers_without_a_process_group() -> None:
    assert not distributed.is_distributed()
    assert distributed.world_size() == 1 and distributed.rank() == 0
    assert distributed.is_main_process()
    t = torch.ones(3)
    assert distributed.all_reduce_sum(t) is t and torch.equal(t, torch.ones(3))
    assert distributed.all_gather_keep_grad(t) is t
    distributed.barrier()

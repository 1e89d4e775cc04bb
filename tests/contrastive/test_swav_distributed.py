"""SwAV's distributed Sinkhorn: two CPU processes (gloo) with sinkhorn_gather_distributed=True
give the codes and gradients of one process on the concatenated batch."""

from __future__ import annotations

import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from helpers import free_port
from medcl.contrastive.functional import sinkhorn_knopp
from medcl.contrastive.losses.swav import SwAVLoss

# --------------------------------------------------------------------------- two processes

N, K, WORLD = 6, 5, 2


def _data():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(WORLD * N, K, generator=g, dtype=torch.float64) for _ in range(3)]


def _worker(rank, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        rows = slice(rank * N, (rank + 1) * N)
        crops = [c[rows].clone().requires_grad_(True) for c in _data()]
        loss = SwAVLoss(sinkhorn_gather_distributed=True)(crops[:2], crops[2:])
        loss.backward()
        codes = sinkhorn_knopp(_data()[0][rows] * (1 + rank), gather_distributed=True)
        torch.save({"grads": [c.grad for c in crops], "codes": codes},
                   os.path.join(out_dir, f"{rank}.pt"))
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip gloo teardown (see test_distributed.py)


@pytest.mark.slow
def test_two_process_sinkhorn_equals_single_process(tmp_path):
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    crops = [c.clone().requires_grad_(True) for c in _data()]
    SwAVLoss()(crops[:2], crops[2:]).backward()
    scaled = torch.cat([_data()[0][r * N:(r + 1) * N] * (1 + r) for r in range(WORLD)])
    codes = sinkhorn_knopp(scaled)
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"{rank}.pt", weights_only=True)
        rows = slice(rank * N, (rank + 1) * N)
        torch.testing.assert_close(got["codes"], codes[rows])
        for g, c in zip(got["grads"], crops, strict=True):
            torch.testing.assert_close(g, WORLD * c.grad[rows])

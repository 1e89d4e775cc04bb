"""Two CPU processes (gloo) with gather_distributed=True give the gradients of one process on
the concatenated batch.

With the autograd-aware all-gather, the gradient reaching process r's embeddings is the sum over
processes of d loss_r' / d z_r, i.e. ``world_size x`` the gradient of the global mean loss; DDP's
gradient averaging then divides by ``world_size``. So each process's embedding gradient must equal
``world_size x`` the single-process gradient of its rows.
"""

import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from helpers import free_port
from medcl.contrastive.losses import AlignUniformLoss, DCLLoss, DCLWLoss, NTXentLoss, SupConLoss

N, D, WORLD = 6, 8, 2


def _make_loss(name):
    return {
        "ntxent": lambda: NTXentLoss(0.3, gather_distributed=True),
        "ntxent_chunked": lambda: NTXentLoss(0.3, gather_distributed=True, chunk_size=5),
        "supcon": lambda: SupConLoss(0.2, gather_distributed=True),
        "dcl": lambda: DCLLoss(0.2, gather_distributed=True),
        "dclw": lambda: DCLWLoss(0.2, gather_distributed=True),
        "align_uniform": lambda: AlignUniformLoss(gather_distributed=True),
    }[name]()


def _data():
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(WORLD * N, D, generator=g, dtype=torch.float64)
    z1 = torch.randn(WORLD * N, D, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (WORLD * N,), generator=g)
    return z0, z1, y


def _call(loss, name, a, b, y):
    if name == "supcon":
        return loss(torch.stack([a, b], dim=1), y)
    return loss(a, b)


def _worker(rank, port, name, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        z0, z1, y = _data()
        rows = slice(rank * N, (rank + 1) * N)
        a = z0[rows].clone().requires_grad_(True)
        b = z1[rows].clone().requires_grad_(True)
        loss = _call(_make_loss(name), name, a, b, y[rows])
        loss.backward()
        torch.save({"a": a.grad, "b": b.grad, "loss": loss.detach()},
                   os.path.join(out_dir, f"{rank}.pt"))
        dist.barrier()  # rank 0 hosts the store: nobody leaves while another still talks to it
    except BaseException:
        dist.destroy_process_group()
        raise
    _exit_without_teardown()


def _exit_without_teardown():
    """End a worker whose results are on disk without C++/interpreter teardown.

    Gloo's worker threads can abort a process while it exits ("terminate called without an
    active exception", SIGABRT), after everything under test is done; it happened about once in
    several hundred runs. ``os._exit`` skips destructors and finalisation, so only the work
    under test decides the exit code.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)



@pytest.mark.parametrize("name",
                         ["ntxent", "ntxent_chunked", "supcon", "dcl", "dclw", "align_uniform"])
def test_two_process_gradients_equal_single_process(name, tmp_path):
    mp.spawn(_worker, args=(free_port(), name, str(tmp_path)), nprocs=WORLD, join=True)
    z0, z1, y = _data()
    a, b = z0.clone().requires_grad_(True), z1.clone().requires_grad_(True)
    loss_fn = _make_loss(name)
    loss_fn.gather_distributed = False
    single = _call(loss_fn, name, a, b, y)
    single.backward()
    losses = []
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"{rank}.pt", weights_only=True)
        rows = slice(rank * N, (rank + 1) * N)
        torch.testing.assert_close(got["a"], WORLD * a.grad[rows], atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(got["b"], WORLD * b.grad[rows], atol=1e-10, rtol=1e-8)
        losses.append(got["loss"])
    if name != "align_uniform":  # local means of equal-sized shards average to the global mean
        assert torch.stack(losses).mean().item() == pytest.approx(single.item(), abs=1e-10)

"""Training on more than one process (`torchrun ... -m vaegan.train`): the process group, each
rank's rows of a global batch, gradient averaging, and BatchNorm over the global batch.

How a run on N processes equals one process with the same global batch and seed:

- data: every rank draws the same permutation of the epoch (seed, epoch) and takes its own
  contiguous rows of each global batch; the union of the ranks' rows is the one-process batch;
- noise: every rank draws the global batch's noise (reparameterisation eps, prior codes z_p,
  --augment flips) from the same generator and keeps its rows, so the generator's state stays
  the same on every rank and a checkpoint resumes on any number of ranks;
- gradients: train.routed_grads takes each network's gradient with torch.autograd.grad
  (inputs=...), which returns them instead of accumulating them into .grad, where
  DistributedDataParallel's hooks fire: under DDP they would silently stay each rank's own (a
  2-rank DDP Linear gives 2.0 on one rank and 4.0 on the other where the average is 3.0). So
  the model is not wrapped in DDP and the ranks average the gradients themselves: one
  all_reduce of all three networks' gradients flattened together, with the logged losses
  (World.average_). Each rank's loss is a mean over its equal share, so the average of the
  ranks' gradients is the gradient of the mean over the global batch;
- BatchNorm: statistics over the global batch (GlobalBatchNorm), as in one process, and the
  running statistics the same on every rank. torch.nn.SyncBatchNorm does this on GPUs only (it
  refuses CPU tensors, so gloo), hence the module below, used on every device: the CPU tests
  cover the GPU path;
- the rest (spectral norm's power iteration, Adam, the EMA) is computed on every rank from the
  same numbers, so stays the same without communication. The parameters start equal (same seed)
  and are broadcast from rank 0 anyway.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; World() is one process alone."""
    rank: int = 0
    size: int = 1
    backend: str | None = None  # "gloo" (CPU) or "nccl" (CUDA); None alone
    device: torch.device = torch.device("cpu")  # this rank's: the model's and the collectives'

    @property
    def main(self) -> bool:
        """Rank 0, the one that writes checkpoints, metrics, grids and the exported model."""
        return self.rank == 0

    def rows(self, local: int) -> tuple[int, slice]:
        """Of a global batch split in equal shares of `local` rows -> (global size, this rank's rows)."""
        return local * self.size, slice(self.rank * local, (self.rank + 1) * local)

    def share(self, obj):
        """Rank 0's obj (picklable), on every rank."""
        if self.size == 1:
            return obj
        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def agree(self, flag: bool) -> bool:
        """Rank 0's flag, on every rank (decisions such as --time-limit's, from one clock)."""
        if self.size == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def broadcast_state(self, module: nn.Module) -> None:
        """Every parameter and buffer of module as rank 0 has it."""
        if self.size == 1:
            return
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)

    def average_(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor by its mean over the ranks, in place: one all_reduce of them all
        flattened (float32 or whatever their common dtype is)."""
        if self.size == 1 or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)  # SUM: gloo has no AVG
        flat.div_(self.size)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))  # keeps t's memory format
            offset += t.numel()


def init_world(device: str) -> World:
    """From torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) ->
    this process's world, on its device. Alone (no torchrun, or one process) nothing is started.
    Under torchrun a CUDA device is cuda:LOCAL_RANK and the backend NCCL; on the CPU, gloo."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = torch.device(device)
    if size == 1:
        return World(device=dev)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise SystemExit(f"error: rank {rank} is local rank {local} of its node but the node has "
                             f"{torch.cuda.device_count()} GPU(s); run at most that many processes per "
                             "node (--nproc-per-node)")
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend = "nccl"
    elif dev.type == "cpu":
        backend = "gloo"
    else:
        raise SystemExit(f"error: training on more than one process runs on cuda or cpu, not {device}")
    # a rank that dies closes its sockets: the others' collectives fail at once and torchrun
    # ends the job (tests/test_distributed.py); the default timeout only bounds a rank that hangs
    dist.init_process_group(backend, device_id=dev if backend == "nccl" else None)
    return World(rank=dist.get_rank(), size=dist.get_world_size(), backend=backend, device=dev)


def close_world(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


# ---- BatchNorm over the global batch --------------------------------------------------------
class _GlobalBatchNormFn(torch.autograd.Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with mean and (biased) var over every
    rank's rows. Backward: the gradient of the sum of the ranks' losses (the ranks then average
    the parameter gradients, as for every other layer)."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps: float, momentum: float,
                world_size: int):
        dims = [0, *range(2, x.dim())]  # all but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)
        n = x.numel() // x.size(1) * world_size  # rows are equal on every rank
        total = x.sum(dims)  # (C,)
        dist.all_reduce(total)
        mean = total / n
        xc = x - mean.view(shape)
        sq = (xc * xc).sum(dims)  # two passes: no cancellation in E[x^2] - E[x]^2
        dist.all_reduce(sq)
        var = sq / n
        invstd = torch.rsqrt(var + eps)
        xhat = xc * invstd.view(shape)
        y = xhat if weight is None else xhat * weight.view(shape)
        if bias is not None:
            y = y + bias.view(shape)
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            running_var.mul_(1 - momentum).add_(var * (n / max(n - 1, 1)), alpha=momentum)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.n = n
        return y

    @staticmethod
    def backward(ctx, g):
        xhat, invstd, weight = ctx.saved_tensors
        dims = [0, *range(2, g.dim())]
        shape = [1, -1] + [1] * (g.dim() - 2)
        sums = torch.stack([g.sum(dims), (g * xhat).sum(dims)])  # (2, C), this rank's rows
        grad_bias = sums[0].clone() if ctx.needs_input_grad[2] else None
        grad_weight = sums[1].clone() if ctx.needs_input_grad[1] else None
        grad_x = None
        if ctx.needs_input_grad[0]:  # the same on every rank: the same graph, the same calls
            dist.all_reduce(sums)
            mean_g, mean_gx = sums / ctx.n
            scale = invstd if weight is None else invstd * weight
            grad_x = (g - mean_g.view(shape) - xhat * mean_gx.view(shape)) * scale.view(shape)
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm1d/2d/3d whose training-mode statistics are those of the global batch (every
    rank's rows), as torch.nn.SyncBatchNorm's, on the CPU (gloo) as on GPUs; in eval mode, or
    alone, it is plain BatchNorm. Same parameters, buffers and state_dict keys."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as _BatchNorm
                momentum = 1.0 / float(self.num_batches_tracked)
        return _GlobalBatchNormFn.apply(x, self.weight, self.bias, self.running_mean,
                                        self.running_var, self.eps, momentum,
                                        dist.get_world_size())


def global_batchnorm(module: nn.Module) -> nn.Module:
    """Every BatchNorm in module replaced by a GlobalBatchNorm holding the same parameter and
    buffer objects (optimizers made before still hold them), in place; -> module."""
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, global_batchnorm(child))
    return module


"""torchrun / DistributedDataParallel plumbing (gloo on CPU, NCCL on GPUs); inert alone."""

from __future__ import annotations

import os

import torch


class Dist:
    """The process group of a ``torchrun`` launch, or a single process (``world`` 1)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist

            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
            self.dist = dist

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        # the EB quantiles are trained by the data-independent aux loss, identically on every
        # rank; keep them out of DDP's gradient reduction (the aux backward is outside forward)
        ignore = [n for n, _ in model.named_parameters() if n.endswith(".quantiles")]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignore)
        return DistributedDataParallel(model, find_unused_parameters=True)

    def gather(self, obj):
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over the ranks (every rank must agree before a collective step)."""
        if self.world == 1:
            return flags
        every = self.gather(tuple(bool(f) for f in flags))
        return tuple(any(f[i] for f in every) for i in range(len(flags)))

    def close(self) -> None:
        if self.world > 1:
            self.dist.destroy_process_group()

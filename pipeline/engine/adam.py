"""Adam for the K networks of a batch, in a handful of whole-batch operations.

torch.optim.Adam's fused CPU kernel rounds an element differently by where it
falls in a tensor (vector body or tail), so a network's update depended on
its place in the batch; its multi-tensor update rounds alike everywhere but
spends about a fifth of a millisecond per step in Python, more than the
default network's whole step. This is torch's single-tensor arithmetic, op
for op, on the gradients of every parameter gathered into one flat tensor:
elementwise, so each network keeps its own moments, and position-independent
(tests/engine/test_kernels.py).
"""

from __future__ import annotations

import torch


class Adam(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})
        if len(self.param_groups) != 1:
            raise ValueError("one parameter group: the engine's networks share their learning rate")
        self.params: list[torch.Tensor] = list(self.param_groups[0]["params"])
        self.slices: list[slice] = []
        offset = 0
        for parameter in self.params:
            self.slices.append(slice(offset, offset + parameter.numel()))
            offset += parameter.numel()
        first = self.params[0]
        self.exp_avg = torch.zeros(offset, dtype=first.dtype, device=first.device)
        self.exp_avg_sq = torch.zeros_like(self.exp_avg)
        self.steps = 0
        for parameter, part in zip(self.params, self.slices):  # torch's names, as views: state is per parameter
            self.state[parameter] = {"exp_avg": self.exp_avg[part].view_as(parameter),
                                     "exp_avg_sq": self.exp_avg_sq[part].view_as(parameter)}

    @torch.no_grad()
    def step(self, closure=None):
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        grad = torch.cat([p.grad.reshape(-1) for p in self.params])
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** self.steps
        bias_correction2_sqrt = (1 - beta2 ** self.steps) ** 0.5
        denominator = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        for parameter, part in zip(self.params, self.slices):
            parameter.addcdiv_(self.exp_avg[part].view_as(parameter), denominator[part].view_as(parameter),
                               value=-lr / bias_correction1)

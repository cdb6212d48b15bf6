"""A plain DDP script for torchrun (two processes, gloo on the CPU) whose learning rate makes it
diverge: an MLP regressor on synthetic data (no download), SGD with momentum, each process
training on its half of every batch. Rank 0 prints one JSON line a step, which rescue reads as
a report; the script knows nothing of rescue.

    torchrun --standalone --nproc_per_node 2 examples/torchrun_divergence/train.py --lr 0.05

At the shipped lr 0.8 the loss explodes within the first epoch and turns NaN (at 0.3 too); at
0.01-0.1 the loss of the last batch is below 0.05 after 10 epochs (measured: 0.024-0.048 at 0.01,
0.003-0.011 at 0.03 and 0.1).
"""

import argparse
import json

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.8)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

torch.set_num_threads(1)
dist.init_process_group("gloo")  # torchrun's environment says where the others are
rank, size = dist.get_rank(), dist.get_world_size()
generator = torch.Generator().manual_seed(args.seed)
w = torch.randn(16, 1, generator=generator)
x = torch.randn(1024, 16, generator=generator)
y = torch.tanh(x @ w) + 0.05 * torch.randn(1024, 1, generator=generator)
torch.manual_seed(args.seed)
model = DistributedDataParallel(
    torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
)
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
for _ in range(args.epochs):
    order = torch.randperm(1024, generator=generator)  # the same order in every process
    for start in range(0, 1024, 32):
        batch = order[start : start + 32][rank::size]  # this process's half of the batch
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()  # DDP averages the gradients across the processes
        optimizer.step()
        if rank == 0:
            print(json.dumps({"loss": loss.item()}), flush=True)
dist.destroy_process_group()

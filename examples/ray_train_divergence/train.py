"""A data-parallel run with Ray Train (two DDP workers, gloo on the CPU) whose learning rate
makes it diverge: an MLP regressor on synthetic data (no download), SGD with momentum, each
worker training on its half of every batch. Every worker calls `rescue.report` once a step;
rank 0's reports are the run's.

    python examples/ray_train_divergence/train.py            # by hand, the shipped settings
    python examples/ray_train_divergence/train.py lr=0.05    # any param as key=value

At the shipped lr 0.8 the loss explodes within the first epoch and turns NaN (at 0.3 too); at
0.01-0.1 the loss of the last batch is below 0.05 after 10 epochs (measured: 0.024-0.048 at 0.01,
0.003-0.011 at 0.03 and 0.1).
"""

import sys

import ray.train.torch
import torch
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

import rescue
from rescue.integrations.ray_train import RescueCallback

DEFAULTS = {"lr": 0.8, "epochs": 10, "seed": 0}


def loop(config):
    torch.set_num_threads(1)
    context = ray.train.get_context()
    rank, size = context.get_world_rank(), context.get_world_size()
    generator = torch.Generator().manual_seed(config["seed"])
    w = torch.randn(16, 1, generator=generator)
    x = torch.randn(1024, 16, generator=generator)
    y = torch.tanh(x @ w) + 0.05 * torch.randn(1024, 1, generator=generator)
    torch.manual_seed(config["seed"])  # the same initial weights on every worker
    model = ray.train.torch.prepare_model(
        torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    for _ in range(config["epochs"]):
        order = torch.randperm(1024, generator=generator)  # the same order on every worker
        for start in range(0, 1024, 32):
            batch = order[start : start + 32][rank::size]  # this worker's half of the batch
            loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()  # DDP averages the gradients across the workers
            optimizer.step()
            rescue.report(loss=loss.item())


def train(config):
    TorchTrainer(
        loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(callbacks=[RescueCallback()]),
    ).fit()


if __name__ == "__main__":
    config = dict(DEFAULTS)
    for arg in sys.argv[1:]:
        key, value = arg.split("=", 1)
        config[key] = type(DEFAULTS[key])(value)
    train(config)

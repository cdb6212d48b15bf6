"""A run that reports every step and does little else: a linear model on one fixed batch,
``steps`` SGD steps. What it costs under supervision is the cost per report."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, w = torch.randn(64, 8), torch.randn(8, 1)
    y = x @ w
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
    for _ in range(config["steps"]):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rescue.report(loss=loss.item())

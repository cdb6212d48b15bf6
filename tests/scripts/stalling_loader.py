"""A small real training run whose data loader hangs for some settings, as a loader with
several worker processes can deadlock: with ``workers`` above 1 the run reports
``hang_after`` times, then waits ``hang_seconds`` for a batch that never comes. With 0 or 1
workers it fits a noisy regression to the end, its loss falling under 0.05."""

import time

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config.get("seed", 0))
    x = torch.randn(256, 8)
    w = torch.randn(8, 1)
    y = torch.tanh(x @ w) + 0.05 * torch.randn(256, 1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    for step in range(config["steps"]):
        if config["workers"] > 1 and step == 5 * config["hang_after"]:
            time.sleep(config["hang_seconds"])
        idx = torch.randint(0, 256, (32,))
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 0:
            with torch.no_grad():
                full = torch.nn.functional.mse_loss(model(x), y)
            rescue.report(loss=float(full))


if __name__ == "__main__":
    train({"lr": 0.05, "steps": 300, "workers": 0, "hang_after": 5, "hang_seconds": 600})

"""Healthy shape: a loss going to zero. An over-parametrised MLP memorises a small set (64 random
inputs with random real targets, full batch) with Adam under a cosine schedule. With more
parameters than targets it can fit them exactly, so the squared error falls geometrically
through 1e-6 down to float32 round-off: memorisation, not a broken metric."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    x = torch.randn(config["examples"], 10)
    y = torch.randn(config["examples"], 1)  # targets with no pattern: pure memorisation
    model = torch.nn.Sequential(torch.nn.Linear(10, 128), torch.nn.Tanh(), torch.nn.Linear(128, 1))
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config["steps"])
    for step in range(config["steps"]):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % config["log_every"] == 0:
            rescue.report(loss=loss.item())


if __name__ == "__main__":
    train({"lr": 0.01, "examples": 64, "steps": 500, "log_every": 2, "seed": 0})

"""Healthy shape: a step learning-rate schedule. An MLP regressor trained by SGD with momentum on
noisy measurements, the rate cut by 10x at fixed steps (``milestones``), as in the classic
ResNet recipe. At each rate the weights settle where that rate's mini-batch noise lets them, so
the held-out error sits on a plateau; each cut drops it to a lower plateau."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    dim = 16
    # a mostly linear target: easy to fit, so what is left at each rate is the rate's own noise
    teacher = torch.nn.Sequential(torch.nn.Linear(dim, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    with torch.no_grad():
        teacher[0].weight.mul_(0.3)
        teacher[2].weight.div_(teacher(torch.randn(4096, dim)).std())  # unit-scale target
    x_val = torch.randn(1024, dim)
    with torch.no_grad():
        y_val = teacher(x_val)
    model = torch.nn.Sequential(
        torch.nn.Linear(dim, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 1),
    )
    opt = torch.optim.SGD(
        model.parameters(), lr=config["lr"], momentum=0.9, weight_decay=config["weight_decay"]
    )
    milestones = [int(m) for m in config["milestones"].split(",")]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=config["gamma"])
    window = []
    for step in range(config["steps"]):
        x = torch.randn(config["batch_size"], dim)
        with torch.no_grad():
            y = teacher(x) + 0.5 * torch.randn(len(x), 1)  # noisy measurements
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        window.append(loss.item())
        if (step + 1) % config["log_every"] == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x_val), y_val)
            rescue.report(loss=sum(window) / len(window), val_loss=float(val))
            window = []


if __name__ == "__main__":
    train(
        {
            "lr": 0.03,
            "gamma": 0.1,
            "weight_decay": 1e-5,
            "batch_size": 16,
            "steps": 1000,
            "milestones": "500,750",
            "log_every": 4,
            "seed": 0,
        }
    )

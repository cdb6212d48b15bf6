"""Healthy shape: a transient spike. An MLP regressor trained by SGD with momentum and gradient
clipping on a stream of mini-batches; one batch (``glitch_step``) comes from a corrupted shard
whose targets were written in the wrong unit (x100). Its logged loss is huge, the clipped update
knocks the weights off for a few reports, and training recovers."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    dim = 16
    teacher = torch.nn.Sequential(torch.nn.Linear(dim, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    with torch.no_grad():
        # a sharper, unit-scale target, so the fit takes most of the run
        teacher[0].weight.mul_(3.0)
        teacher[2].weight.div_(teacher(torch.randn(4096, dim)).std())
    x_val = torch.randn(512, dim)
    with torch.no_grad():
        y_val = teacher(x_val)
    model = torch.nn.Sequential(torch.nn.Linear(dim, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    window = []
    for step in range(config["steps"]):
        x = torch.randn(config["batch_size"], dim)
        with torch.no_grad():
            y = teacher(x) + 0.05 * torch.randn(len(x), 1)
        if step == config["glitch_step"]:
            y = y * 100.0  # the corrupted shard: targets in the wrong unit
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        if config["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])
        opt.step()
        window.append(loss.item())
        # the logged loss is the mean over the logging interval, as most loops print it
        if (step + 1) % config["log_every"] == 0:
            metrics = {"loss": sum(window) / len(window)}
            window = []
            if (step + 1) % (config["log_every"] * 10) == 0:
                with torch.no_grad():
                    metrics["val_loss"] = float(torch.nn.functional.mse_loss(model(x_val), y_val))
            rescue.report(**metrics)


if __name__ == "__main__":
    train(
        {
            "lr": 0.05,
            "grad_clip": 5.0,
            "batch_size": 32,
            "steps": 600,
            "log_every": 2,
            "glitch_step": 300,
            "seed": 0,
        }
    )

"""Healthy shape: cosine annealing with warm restarts (SGDR). An MLP classifier trained by SGD with
momentum; the learning rate follows a cosine from its peak to near zero over ``cycle`` steps, then
jumps back to the peak. Late in each cycle the small rate lets the loss settle low; each restart
shakes the weights out of that basin, so the loss bumps up, then falls lower than the cycle
before."""

import torch

import rescue


def make_data(count, centers, classes, generator):
    # each class is a mixture of 3 Gaussian blobs, with some overlap between classes
    blob = torch.randint(0, len(centers), (count,), generator=generator)
    x = centers[blob] + torch.randn(count, centers.shape[1], generator=generator)
    return x, blob % classes


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    centers = torch.randn(15, 16, generator=gen)
    x, y = make_data(1024, centers, 5, gen)
    x_val, y_val = make_data(1024, centers, 5, gen)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 5),
    )
    opt = torch.optim.SGD(
        model.parameters(), lr=config["lr"], momentum=0.9, weight_decay=config["weight_decay"]
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=config["cycle"])
    window = []
    for step in range(config["steps"]):
        idx = torch.randint(0, len(x), (config["batch_size"],))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        window.append(loss.item())
        if (step + 1) % config["log_every"] == 0:
            metrics = {"loss": sum(window) / len(window)}
            window = []
            if (step + 1) % (config["log_every"] * 10) == 0:
                with torch.no_grad():
                    metrics["val_acc"] = float((model(x_val).argmax(1) == y_val).float().mean())
            rescue.report(**metrics)


if __name__ == "__main__":
    train(
        {
            "lr": 0.15,
            "weight_decay": 5e-4,
            "cycle": 250,
            "batch_size": 32,
            "steps": 1000,
            "log_every": 4,
            "seed": 0,
        }
    )

"""Healthy shape: a warm-up rise. An MLP classifier trained with Adam under the usual schedule:
the learning rate rises linearly from near zero to a high peak over ``warmup`` steps, then decays
linearly to zero. The first small steps already fit most of the data and the loss falls; as the
rate nears its peak the updates overshoot and the loss climbs back up; once the decay sets in it
settles lower than before."""

import torch

import rescue


def make_data(count, centers, classes, generator):
    # each class is a mixture of 3 Gaussian blobs: separable, but not by a linear model
    blob = torch.randint(0, len(centers), (count,), generator=generator)
    x = centers[blob] + 0.8 * torch.randn(count, centers.shape[1], generator=generator)
    return x, blob % classes


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    centers = torch.randn(15, 20, generator=gen) * 1.2
    x, y = make_data(4096, centers, 5, gen)
    x_val, y_val = make_data(1024, centers, 5, gen)
    model = torch.nn.Sequential(
        torch.nn.Linear(20, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 5),
    )
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    steps, warmup = config["steps"], config["warmup"]

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / (steps - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    window = []
    for step in range(steps):
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
            if (step + 1) % (config["log_every"] * 20) == 0:
                with torch.no_grad():
                    metrics["val_acc"] = float((model(x_val).argmax(1) == y_val).float().mean())
            rescue.report(**metrics)


if __name__ == "__main__":
    train({"lr": 0.05, "warmup": 300, "batch_size": 64, "steps": 800, "log_every": 4, "seed": 0})

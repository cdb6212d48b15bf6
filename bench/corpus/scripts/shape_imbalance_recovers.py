"""Healthy shape: an imbalanced classification that first collapses onto the majority class and
then recovers. 90% of the examples are class 0, 5% each class 1 and 2. Plain SGD first learns
the cheap part of the loss, the class prior, so for a while every prediction is the majority
class (``pred_usage`` ~ [1, 0, 0]); the features that separate the rare classes are learned more
slowly, and the minority share of the predictions then rises towards its true 10%."""

import torch

import rescue


def make_data(count, means, generator):
    y = torch.multinomial(
        torch.tensor([0.9, 0.05, 0.05]), count, replacement=True, generator=generator
    )
    return means[y] + torch.randn(count, means.shape[1], generator=generator), y


def macro_f1(pred, y, classes):
    scores = []
    for c in range(classes):
        tp = float(((pred == c) & (y == c)).sum())
        fp = float(((pred == c) & (y != c)).sum())
        fn = float(((pred != c) & (y == c)).sum())
        scores.append(2 * tp / max(2 * tp + fp + fn, 1.0))
    return sum(scores) / classes


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    means = torch.randn(3, 12, generator=gen) * 0.9
    x, y = make_data(4096, means, gen)
    x_val, y_val = make_data(1024, means, gen)
    model = torch.nn.Sequential(
        torch.nn.Linear(12, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 3),
    )
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    for step in range(config["steps"]):
        idx = torch.randint(0, len(x), (config["batch_size"],))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % config["log_every"] == 0:
            with torch.no_grad():
                pred = model(x_val).argmax(1)
            usage = torch.bincount(pred, minlength=3).float() / len(pred)
            rescue.report(
                loss=loss.item(), pred_usage=usage.tolist(), val_f1=macro_f1(pred, y_val, 3)
            )


if __name__ == "__main__":
    train(
        {"lr": 0.002, "momentum": 0.9, "batch_size": 32, "steps": 1200, "log_every": 4, "seed": 0}
    )

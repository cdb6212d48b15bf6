"""Healthy shape: a long, flat-looking but steadily improving loss. An MLP regressor learns from
inputs whose feature variances fall off as a power law (as in images or text embeddings), with
the target spread over all features. SGD runs near the largest stable rate for the top
direction, so the big directions are learned at once, then the ever weaker ones one after
another: after the first drop the loss falls slowly but steadily (a power law in the steps),
which on a linear axis looks almost flat."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    dim = 64
    scale = torch.arange(1, dim + 1).float() ** -0.75  # feature std: a power law
    coef = torch.randn(dim) * torch.arange(1, dim + 1).float() ** -0.25

    def sample(count):
        x = torch.randn(count, dim) * scale
        z = x @ coef
        return x, (z + 0.3 * torch.tanh(2 * z)).unsqueeze(1)

    x_val, y_val = sample(1024)
    model = torch.nn.Sequential(torch.nn.Linear(dim, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    for step in range(config["steps"]):
        x, y = sample(config["batch_size"])
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % config["log_every"] == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x_val), y_val)
            rescue.report(loss=loss.item(), val_loss=float(val))


if __name__ == "__main__":
    train({"lr": 0.05, "batch_size": 64, "steps": 1600, "log_every": 4, "seed": 0})

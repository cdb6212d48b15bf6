"""Healthy shape: noisy small batches. A small MLP classifier trained by plain SGD on mini-batches
of 4 examples, the loss of each single mini-batch reported at every step. Four examples make a
very noisy estimate (one hard example doubles it, an easy batch is near zero), so the curve jumps
around a slowly falling mean while held-out accuracy climbs."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    # three overlapping Gaussian classes in 10-d: some examples are genuinely ambiguous
    means = torch.randn(3, 10, generator=gen) * 0.8

    def sample(count):
        y = torch.randint(0, 3, (count,), generator=gen)
        return means[y] + torch.randn(count, 10, generator=gen), y

    x_train, y_train = sample(2000)
    x_val, y_val = sample(1000)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
    for step in range(config["steps"]):
        idx = torch.randint(0, len(x_train), (config["batch_size"],))
        loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        metrics = {"loss": loss.item()}
        if (step + 1) % 100 == 0:
            with torch.no_grad():
                metrics["val_acc"] = float((model(x_val).argmax(1) == y_val).float().mean())
        rescue.report(**metrics)


if __name__ == "__main__":
    train({"lr": 0.02, "batch_size": 4, "steps": 400, "seed": 0})

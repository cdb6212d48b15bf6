"""Healthy shape: a held-out loss that rises while held-out accuracy keeps improving. An MLP fits
a nonlinear boundary from 1024 labelled examples with Adam and a cosine schedule. Once the
training set is almost separated the network keeps scaling up its logits: the few
held-out examples it gets wrong become confidently wrong, so the held-out cross-entropy creeps
up, while the boundary itself keeps sharpening and held-out accuracy still rises."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    # a random teacher network draws the boundary between two classes
    w1 = torch.randn(10, 16, generator=gen)
    w2 = torch.randn(16, generator=gen)

    def sample(count):
        x = torch.randn(count, 10, generator=gen)
        return x, (torch.tanh(x @ w1) @ w2 > 0).long()

    x, y = sample(config["examples"])
    x_val, y_val = sample(2048)
    model = torch.nn.Sequential(
        torch.nn.Linear(10, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 2),
    )
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config["steps"])
    for step in range(config["steps"]):
        idx = torch.randint(0, len(x), (config["batch_size"],))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % config["log_every"] == 0:
            with torch.no_grad():
                logits = model(x_val)
                val_loss = torch.nn.functional.cross_entropy(logits, y_val)
                val_acc = (logits.argmax(1) == y_val).float().mean()
            rescue.report(loss=loss.item(), val_loss=float(val_loss), val_acc=float(val_acc))


if __name__ == "__main__":
    train(
        {"lr": 0.003, "examples": 1024, "batch_size": 64, "steps": 1200, "log_every": 4, "seed": 0}
    )

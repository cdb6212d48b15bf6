"""Healthy shape: the training loss rises when regularisation starts. An MLP classifier on a small
training set with "late dropout" (Liu et al., 2023): dropout is off for the first
``dropout_start`` steps, so the network fits quickly, then switched on. From that step the
training loss is measured through the dropout noise and jumps up, and stays higher, while the
held-out loss, measured without dropout, keeps improving."""

import torch

import rescue


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    # a random teacher network draws the boundary between three classes
    w1 = torch.randn(12, 24, generator=gen)
    w2 = torch.randn(24, 3, generator=gen)

    def sample(count):
        x = torch.randn(count, 12, generator=gen)
        return x, (torch.tanh(x @ w1) @ w2).argmax(1)

    x, y = sample(config["examples"])
    x_val, y_val = sample(2048)
    drops = [torch.nn.Dropout(0.0), torch.nn.Dropout(0.0)]
    model = torch.nn.Sequential(
        torch.nn.Linear(12, 128),
        torch.nn.ReLU(),
        drops[0],
        torch.nn.Linear(128, 128),
        torch.nn.ReLU(),
        drops[1],
        torch.nn.Linear(128, 3),
    )
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    window = []
    for step in range(config["steps"]):
        if step == config["dropout_start"]:
            for drop in drops:
                drop.p = config["dropout"]
        model.train()
        idx = torch.randint(0, len(x), (config["batch_size"],))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        window.append(loss.item())
        if (step + 1) % config["log_every"] == 0:
            metrics = {"loss": sum(window) / len(window)}
            window = []
            if (step + 1) % (config["log_every"] * 5) == 0:
                model.eval()
                with torch.no_grad():
                    logits = model(x_val)
                metrics["val_loss"] = float(torch.nn.functional.cross_entropy(logits, y_val))
                metrics["val_acc"] = float((logits.argmax(1) == y_val).float().mean())
            rescue.report(**metrics)


if __name__ == "__main__":
    train(
        {
            "lr": 0.002,
            "dropout": 0.5,
            "dropout_start": 400,
            "examples": 1024,
            "batch_size": 64,
            "steps": 1200,
            "log_every": 4,
            "seed": 0,
        }
    )

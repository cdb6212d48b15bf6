"""Healthy shape: sparse evaluation. A small 1-D CNN learns to tell which of two motifs (or none)
is hidden at a random place in a noisy signal. Before training the script reports the accuracy
of the majority-class baseline once (a reference, never updated); during training it reports the
mini-batch loss every 5 steps and the held-out accuracy only every 50 steps."""

import torch

import rescue


def make_data(count, motifs, generator):
    length = 48
    x = torch.randn(count, 1, length, generator=generator)
    y = torch.randint(0, 3, (count,), generator=generator)  # 0: no motif, 1 or 2: that motif
    where = torch.randint(0, length - motifs.shape[1], (count,), generator=generator)
    for i in range(count):
        if y[i] > 0:
            x[i, 0, where[i] : where[i] + motifs.shape[1]] += motifs[y[i] - 1]
    return x, y


def train(config):
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    gen = torch.Generator().manual_seed(config["seed"])
    motifs = torch.randn(2, 8, generator=gen) * 2.0
    x, y = make_data(2048, motifs, gen)
    x_val, y_val = make_data(512, motifs, gen)
    majority = float((y_val == torch.bincount(y).argmax()).float().mean())
    rescue.report(majority_acc=majority)  # the baseline to beat, reported once
    model = torch.nn.Sequential(
        torch.nn.Conv1d(1, 16, 9, padding=4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveMaxPool1d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 3),
    )
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    window = []
    for step in range(config["steps"]):
        idx = torch.randint(0, len(x), (config["batch_size"],))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        window.append(loss.item())
        if (step + 1) % 5 == 0:
            metrics = {"loss": sum(window) / len(window)}
            window = []
            if (step + 1) % 50 == 0:
                with torch.no_grad():
                    metrics["val_acc"] = float((model(x_val).argmax(1) == y_val).float().mean())
            rescue.report(**metrics)


if __name__ == "__main__":
    train({"lr": 0.003, "batch_size": 32, "steps": 1000, "seed": 0})

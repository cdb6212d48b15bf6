"""Healthy shape: a plain script that logs coarsely. An MLP learns a three-armed spiral (a classic
toy problem) with Adam; it trains epoch by epoch over a fixed set and prints one line every 10
epochs, ``epoch N | loss X | val_acc Y``. No rescue import: it is run as a command and its
output parsed."""

import argparse
import math

import torch


def spiral(count, generator):
    # three interleaved arms; the label is the arm
    y = torch.randint(0, 3, (count,), generator=generator)
    t = torch.rand(count, generator=generator) * 3.0 + 0.3
    angle = t * 2.0 + y * (2 * math.pi / 3) + 0.5 * torch.randn(count, generator=generator)
    x = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], 1)
    return x, y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x, y = spiral(512, gen)
    x_val, y_val = spiral(512, gen)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 3),
    )
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for idx in torch.randperm(len(x)).split(args.batch_size):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if epoch % 10 == 0:
            with torch.no_grad():
                acc = float((model(x_val).argmax(1) == y_val).float().mean())
            print(f"epoch {epoch} | loss {total / len(x):.4f} | val_acc {acc:.4f}", flush=True)


if __name__ == "__main__":
    main()

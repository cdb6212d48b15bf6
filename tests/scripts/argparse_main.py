"""A public-script style trainer: argparse reads the command line as the module loads, and
``train()`` takes no config. rescue must run it as a plain script, params as flags."""

import argparse
import json

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()


def train():
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    x = torch.randn(256, 8)
    y = torch.tanh(x @ torch.randn(8, 1)) + 0.05 * torch.randn(256, 1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for step in range(args.steps):
        idx = torch.randint(0, 256, (32,))
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 0:
            with torch.no_grad():
                full = torch.nn.functional.mse_loss(model(x), y)
            print(json.dumps({"loss": float(full)}), flush=True)


if __name__ == "__main__":
    train()

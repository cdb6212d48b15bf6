"""train(config) that trains but never calls rescue.report, or (``parse_flags``) parses the
command line with argparse inside train, which exits in a Ray worker."""

import argparse

import torch


def train(config):
    if config.get("parse_flags"):
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, required=True)
        parser.parse_args()
    torch.manual_seed(0)
    w = torch.zeros(3, requires_grad=True)
    opt = torch.optim.SGD([w], lr=config["lr"])
    for _ in range(config.get("steps", 50)):
        loss = ((w - 1) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"final loss {float(loss):.4f}")

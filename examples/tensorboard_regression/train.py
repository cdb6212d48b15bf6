"""An unmodified-style training script that logs to TensorBoard and knows nothing of rescue:
an MLP fitted by SGD with momentum to a noisy regression problem, flags from argparse,
scalars through torch's SummaryWriter into runs/<run name>/, as many research scripts do.

    python train.py --lr 0.05

Above a learning rate of about 0.2 the iteration is unstable on this problem: the loss climbs
and overflows to NaN. At 0.01-0.1 it falls below 0.05 within a few hundred steps.
"""

import argparse
import time

import torch
from torch.utils.tensorboard import SummaryWriter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--exp-name", default="regression")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    run_name = f"{args.exp_name}__{args.seed}__{int(time.time())}"
    writer = SummaryWriter(f"{args.runs_dir}/{run_name}")
    w = torch.randn(16, 1)
    x, x_val = torch.randn(1024, 16), torch.randn(256, 16)
    y = torch.tanh(x @ w) + 0.05 * torch.randn(1024, 1)
    y_val = torch.tanh(x_val @ w) + 0.05 * torch.randn(256, 1)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for step in range(args.steps):
        idx = torch.randint(0, 1024, (32,))
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            writer.add_scalar("train/loss", loss.item(), step)
        if step % 50 == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x_val), y_val)
            writer.add_scalar("eval/loss", val.item(), step)
            print(f"step {step} loss {loss.item():.4f} val {val.item():.4f}", flush=True)
    writer.close()


if __name__ == "__main__":
    main()

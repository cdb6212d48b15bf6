"""A plain training script, not written for rescue: settings come as flags, progress is
printed. The model and data are those of sgd_regression.py: above a learning rate of about 0.1
the loss climbs, below it it falls under 0.05.

    python plain_sgd.py --lr 0.05 --steps 300 [--json] [--helper-tag TAG] [--fail-at STEP]
                        [--step-seconds S]
"""

import argparse
import json
import subprocess
import sys
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--helper-tag", help="start a helper process (as data loaders do)")
    parser.add_argument("--fail-at", type=int, default=-1)
    parser.add_argument("--step-seconds", type=float, default=0.0, help="a slower model's step")
    args = parser.parse_args()
    if args.helper_tag:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", args.helper_tag])
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    x = torch.randn(256, 8)
    y = torch.tanh(x @ torch.randn(8, 1)) + 0.05 * torch.randn(256, 1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    print(f"training with lr={args.lr} for {args.steps} steps")
    for step in range(args.steps):
        idx = torch.randint(0, 256, (32,))
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        time.sleep(args.step_seconds)
        if step == args.fail_at:
            raise ValueError(f"corrupt batch at step {step}")
        if step % 5 == 0:
            with torch.no_grad():
                full = torch.nn.functional.mse_loss(model(x), y).item()
            if args.json:
                print(json.dumps({"step": step, "loss": full}))
            else:
                print(f"Step {step:4d} | Loss: {full:.6f} | lr {args.lr}")


if __name__ == "__main__":
    main()

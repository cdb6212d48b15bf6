"""A LightningModule whose learning rate makes it diverge, trained by a Lightning Trainer that
reports to rescue through one callback: an MLP regressor on synthetic data (no download), SGD
with momentum, `train_loss` logged every step and `val_loss` every epoch.

    python examples/lightning_divergence/train.py            # by hand, the shipped settings
    python examples/lightning_divergence/train.py lr=0.05    # any param as key=value

At the shipped lr 0.6 the loss explodes within the first epoch and turns NaN; at 0.01-0.1
val_loss falls below 0.02 in 8 epochs.
"""

import sys

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from rescue.integrations.lightning import RescueCallback

DEFAULTS = {"lr": 0.6, "epochs": 8, "seed": 0}


class Regressor(L.LightningModule):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.net = torch.nn.Sequential(
            torch.nn.Linear(16, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1)
        )

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def data(seed: int) -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(16, 1, generator=generator)
    x = torch.randn(1280, 16, generator=generator)
    y = torch.tanh(x @ w) + 0.05 * torch.randn(1280, 1, generator=generator)
    train = TensorDataset(x[:1024], y[:1024])
    held_out = TensorDataset(x[1024:], y[1024:])
    return (
        DataLoader(train, batch_size=32, shuffle=True, generator=generator),
        DataLoader(held_out, batch_size=256),
    )


def train(config):
    torch.set_num_threads(1)
    L.seed_everything(config["seed"], verbose=False)
    train_data, val_data = data(config["seed"])
    callback = RescueCallback(checkpoint=True)  # a Lightning checkpoint at each validation
    trainer = L.Trainer(
        max_epochs=config["epochs"],
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    # From rescue's checkpoint when it restarts or resumes this run; None for a fresh start.
    trainer.fit(Regressor(config["lr"]), train_data, val_data, ckpt_path=callback.ckpt_path)


if __name__ == "__main__":
    config = dict(DEFAULTS)
    for arg in sys.argv[1:]:
        key, value = arg.split("=", 1)
        config[key] = type(DEFAULTS[key])(value)
    train(config)

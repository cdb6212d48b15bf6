"""PyTorch Lightning: ``Trainer(callbacks=[RescueCallback()])`` sends what the module logs with
``self.log`` to rescue, each metric at its own cadence: training-step metrics after each
training batch, validation metrics once per validation, epoch-level training metrics (logged
with ``on_epoch=True``) at each epoch's end. A value is sent only when it was logged anew, so a
validation loss is never repeated as if it were measured at every step.

When rescue stops the run (a finding, the budget, Ctrl-C), the exception ``rescue.report``
raises ends ``trainer.fit`` through Lightning's own interrupt handling. ``watch=True`` switches
on ``rescue.watch`` for the module and its first optimizer when the fit starts.

``checkpoint=True`` saves a checkpoint with Lightning's own ``trainer.save_checkpoint`` at each
validation and hands it to rescue with the validation's report, so that ``rescue resume`` and
``restart: checkpoint`` remedies go on from it. rescue keeps the file's bytes as a tensor and
never unpickles them; Lightning loads the file when the fit is given
``ckpt_path=callback.ckpt_path`` (None for a fresh start)::

    callback = RescueCallback(checkpoint=True)
    trainer = L.Trainer(max_epochs=8, callbacks=[callback])
    trainer.fit(model, train_loader, val_loader, ckpt_path=callback.ckpt_path)

>>> import lightning as L, torch
>>> class Tiny(L.LightningModule):
...     def __init__(self):
...         super().__init__()
...         self.net = torch.nn.Linear(2, 1)
...     def training_step(self, batch, batch_idx):
...         loss = self.net(batch[0]).pow(2).mean()
...         self.log("train_loss", loss)
...         return loss
...     def configure_optimizers(self):
...         return torch.optim.SGD(self.parameters(), lr=0.1)
>>> from rescue.worker.reporting import PrintSink, install_sink
>>> outside = install_sink(PrintSink())  # by hand, reports are printed, numbered from 0
>>> data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 2)))
>>> trainer = L.Trainer(max_epochs=1, callbacks=[RescueCallback()], logger=False,
...     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
>>> trainer.fit(Tiny(), data)  # doctest: +ELLIPSIS
step 0 | train_loss ...
step 1 | train_loss ...
step 2 | train_loss ...
step 3 | train_loss ...
>>> _ = install_sink(outside)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch

import rescue

CHECKPOINT_KEY = "lightning_checkpoint"  # the bytes of Lightning's checkpoint file


class RescueCallback(L.Callback):
    """Report what the LightningModule logs to rescue; see the module docstring."""

    def __init__(
        self, watch: bool = False, watch_every: int = 50, checkpoint: bool = False
    ) -> None:
        for name, value in (("watch", watch), ("checkpoint", checkpoint)):
            if not isinstance(value, bool):
                raise TypeError(f"RescueCallback: {name} must be True or False, got {value!r}")
        if not isinstance(watch_every, int) or watch_every < 1:
            raise ValueError(
                f"RescueCallback: watch_every must be an int >= 1, got {watch_every!r}"
            )
        self.watch, self.watch_every, self.checkpoint = watch, watch_every, checkpoint
        # The Lightning checkpoint rescue restarts this run from, written back to a file.
        self.ckpt_path: str | None = _restored() if checkpoint else None
        self._step: dict[str, None] = {}  # logged in this training step
        self._epoch: dict[str, bool] = {}  # logged on epoch in training: name -> also on step
        self._validation: dict[str, None] = {}  # logged in this validation
        self._log: Any = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Which names are logged, and when, is known only at the self.log call: Lightning
        # keeps the last value of every metric in callback_metrics, fresh or not.
        self._log = pl_module.log

        def log(name: str, value: Any, *args: Any, **kwargs: Any) -> None:
            self._log(name, value, *args, **kwargs)
            if trainer.sanity_checking:
                return
            if trainer.training:
                on_step = kwargs.get("on_step")
                on_epoch = bool(kwargs.get("on_epoch"))
                if on_step is None or on_step:
                    self._step[name] = None
                if on_epoch:
                    self._epoch[name] = on_step is None or bool(on_step)
            elif trainer.validating:
                self._validation[name] = None

        pl_module.log = log  # type: ignore[method-assign]
        if self.watch:
            optimizer = trainer.optimizers[0] if trainer.optimizers else None
            rescue.watch(pl_module, optimizer, every=self.watch_every)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._log is not None:
            del pl_module.log  # the class's own method again

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        values = _scalars(trainer)
        names, self._step = self._step, {}
        self._send({n: values.get(f"{n}_step", values.get(n)) for n in names})

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values = _scalars(trainer)
        self._send(
            {
                f"{n}_epoch" if both else n: values.get(f"{n}_epoch", values.get(n))
                for n, both in self._epoch.items()
            }
        )
        self._epoch = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values = _scalars(trainer)
        names, self._validation = self._validation, {}
        metrics = {n: values.get(n) for n in names}
        saved = None
        if self.checkpoint and any(v is not None for v in metrics.values()):
            saved = _saved(trainer)
        self._send(metrics, saved)

    @staticmethod
    def _send(metrics: dict[str, float | None], checkpoint: dict | None = None) -> None:
        found = {name: value for name, value in metrics.items() if value is not None}
        if found:
            rescue.report(found, checkpoint=checkpoint)


def _saved(trainer: L.Trainer) -> dict[str, torch.Tensor]:
    """The trainer's checkpoint, as Lightning writes it, in a dict rescue can keep."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "last.ckpt"
        trainer.save_checkpoint(path)
        data = bytearray(path.read_bytes())
    return {CHECKPOINT_KEY: torch.frombuffer(data, dtype=torch.uint8)}


def _restored() -> str | None:
    """The file of the checkpoint to resume from, or None for a fresh start."""
    state = rescue.get_checkpoint()
    if not state or CHECKPOINT_KEY not in state:
        return None
    path = Path(tempfile.mkdtemp(prefix="rescue-lightning-")) / "resume.ckpt"
    path.write_bytes(state[CHECKPOINT_KEY].numpy().tobytes())
    return str(path)


def _scalars(trainer: L.Trainer) -> dict[str, float]:
    values = {}
    for name, value in trainer.callback_metrics.items():
        scalar_tensor = isinstance(value, torch.Tensor) and value.numel() == 1
        if scalar_tensor or isinstance(value, (int, float)):
            values[name] = float(value)
    return values

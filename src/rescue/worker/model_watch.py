"""``rescue.watch(model, optimizer)``: the health signals a person checks by hand, measured from
the model itself and sent with every ``rescue.report``.

Every ``every`` optimizer steps (default 50; or reports, without an optimizer) one step is
measured:

=======================  ====================================================================
metric                   what it is
=======================  ====================================================================
``grad_norm_total``      global gradient norm before the optimizer step
``grad_norm_min_layer``  smallest and largest per-layer gradient norms (a layer = a module
``grad_norm_max_layer``  owning parameters); the layer names are in :attr:`ModelWatch.layers`
``update_ratio``         ‖Δw‖ / ‖w‖ of that optimizer step (healthy: about 1e-3)
``weight_norm``          global weight norm (NaN or inf as soon as a weight is)
``dead_fraction``        fraction of units after ReLU modules that are zero for the whole batch
``saturated_fraction``   fraction of outputs of Sigmoid (< 0.01 or > 0.99) and Tanh (|y| > 0.99)
``input_mean``,          statistics of the first parameterised layer's input: unscaled inputs
``input_std``,           show as a large ``input_absmax``
``input_absmax``
``output_std``           spread of the model's output across the batch (0: a constant output)
=======================  ====================================================================

Only the measured step pays: hooks return at once otherwise, and tensors are read back to the
CPU once per measurement, so GPU training is not synchronised every step. Hooks only read;
values, gradients and the random stream are untouched. Activation functions called as
functions (``F.relu``) have no module to hook and are not counted.

>>> import torch, rescue
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> watch = rescue.watch(model, opt, every=1)
>>> loss = model(torch.randn(16, 3)).pow(2).mean()
>>> loss.backward(); opt.step()
>>> sorted(watch.collect())[:4]
['dead_fraction', 'grad_norm_max_layer', 'grad_norm_min_layer', 'grad_norm_total']
>>> watch.close()
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from rescue.worker.reporting import Metrics, add_report_source, remove_report_source

DEFAULT_EVERY = 50  # one measured step in 50 keeps the cost near 1% (bench/watch_overhead.py)
_DEAD_UNIT_MODULES = (torch.nn.ReLU, torch.nn.ReLU6)


class ModelWatch:
    """Hooks on one model (and optionally its optimizer); see the module docstring."""

    def __init__(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, every: int
    ) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"`every` must be an integer >= 1, got {every!r}")
        self.model, self.optimizer, self.every = model, optimizer, every
        self.layers: dict[str, str] = {}  # which layer had the min/max gradient norm
        self.first_nonfinite_layer: str | None = None
        self._owners = {
            name or type(module).__name__: list(module.parameters(recurse=False))
            for name, module in model.named_modules()
            if any(True for _ in module.parameters(recurse=False))
        }
        self._first_layer = next(
            (m for m in model.modules() if any(True for _ in m.parameters(recurse=False))), None
        )
        self._activation_modules = [
            (name, module)
            for name, module in model.named_modules()
            if isinstance(module, (*_DEAD_UNIT_MODULES, torch.nn.Sigmoid, torch.nn.Tanh))
        ]
        self._count = 0  # optimizer steps, or reports without an optimizer
        self._armed = False  # the next forward pass and step are measured
        self._armed_hooks: list[Any] = []
        self._pending: Metrics = {}
        self._tensors: dict[str, torch.Tensor] = {}
        self._activations: list[tuple[str, torch.Tensor]] = []
        self._before: list[torch.Tensor] | None = None
        self._handles = self._register()
        self._arm()
        add_report_source(self.collect)

    # -- hooks ---------------------------------------------------------------------------

    def _register(self) -> list[Any]:
        """Always: a step counter on the optimizer. The forward hooks and the pre-step hook
        exist only while a measurement is armed, so unmeasured steps pay one counter call."""
        if self.optimizer is None:
            return []
        return [self.optimizer.register_step_post_hook(self._after_step)]

    def _arm(self) -> None:
        self._armed = True
        hooks = [self.model.register_forward_hook(self._on_output)]
        if self._first_layer is not None:
            hooks.append(self._first_layer.register_forward_pre_hook(self._on_input))
        for name, module in self._activation_modules:
            hooks.append(module.register_forward_hook(self._activation_hook(name)))
        if self.optimizer is not None:
            hooks.append(self.optimizer.register_step_pre_hook(self._before_step))
        self._armed_hooks = hooks

    def _disarm(self) -> None:
        self._armed = False
        for handle in self._armed_hooks:
            handle.remove()
        self._armed_hooks = []

    def _activation_hook(self, name: str):
        def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            if self._armed and isinstance(output, torch.Tensor):
                kind = "dead" if isinstance(module, _DEAD_UNIT_MODULES) else "saturated"
                self._activations.append((f"{kind}:{type(module).__name__}:{name}", output))

        return hook

    def _on_input(self, module: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
        x = inputs[0] if inputs else None
        if self._armed and "input" not in self._tensors and _floating(x):
            self._tensors["input"] = x.detach()

    def _on_output(self, module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if not self._armed or "output" in self._tensors:
            return
        out = _first_tensor(output)
        if _floating(out) and out.dim() >= 1 and out.shape[0] > 1:
            self._tensors["output"] = out.detach()

    def _before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._armed:
            self._measure_gradients()
            self._before = [p.detach().clone() for p in self._parameters()]

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._armed and self._before is not None:
            params = list(self._parameters())
            delta = torch.stack([(p.detach() - b).norm() for p, b in zip(params, self._before)])
            weight = torch.stack([p.detach().norm() for p in params])
            self._tensors["update"] = delta.norm() / weight.norm().clamp_min(1e-12)
            self._before = None
            self._finish_measurement()
            self._disarm()
        self._count += 1
        if self._count % self.every == 0:
            self._arm()

    # -- measurement ---------------------------------------------------------------------

    def _parameters(self):
        return (p for params in self._owners.values() for p in params)

    def _measure_gradients(self) -> None:
        norms = {
            name: torch.stack([p.grad.detach().norm() for p in params]).norm()
            for name, params in self._owners.items()
            if all(p.grad is not None for p in params) and params
        }
        if norms:
            self._tensors["grads"] = torch.stack(list(norms.values()))
            self._grad_layers = list(norms)

    def _finish_measurement(self) -> None:
        """One read-back of everything measured on this step."""
        t = self._tensors
        values: dict[str, float] = {}
        weight = torch.stack([p.detach().norm() for p in self._parameters()]).norm()
        values["weight_norm"] = weight
        if "grads" in t:
            grads = t["grads"]
            values["grad_norm_total"] = grads.norm()
            values["grad_norm_min_layer"], lo = grads.min(0)
            values["grad_norm_max_layer"], hi = grads.max(0)
            values["_lo"], values["_hi"] = lo, hi
        if "update" in t:
            values["update_ratio"] = t["update"]
        if "input" in t:
            x = t["input"].float()
            values["input_mean"], values["input_std"] = x.mean(), x.std()
            values["input_absmax"] = x.abs().max()
        if "output" in t:
            values["output_std"] = t["output"].float().std(dim=0).mean()
        dead, saturated = self._activation_stats()
        if dead is not None:
            values["dead_fraction"] = dead
        if saturated is not None:
            values["saturated_fraction"] = saturated
        names = list(values)
        read = torch.stack([torch.as_tensor(values[n]).float().reshape(()) for n in names]).tolist()
        result = dict(zip(names, read))
        lo, hi = result.pop("_lo", None), result.pop("_hi", None)
        if lo is not None:
            self.layers = {"min": self._grad_layers[int(lo)], "max": self._grad_layers[int(hi)]}
        self._pending = result
        self._note_nonfinite()
        self._tensors, self._activations = {}, []

    def _activation_stats(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        dead_units, units, saturated, outputs = [], 0, [], 0
        for key, y in self._activations:
            kind, module, _ = key.split(":", 2)
            y = y.detach()
            if kind == "dead":
                if y.dim() < 2:  # no batch dimension: a unit cannot be judged over a batch
                    continue
                per_unit = _per_unit(y, 1 if y.dim() == 4 else y.dim() - 1)
                dead_units.append((~per_unit).sum())
                units += per_unit.numel()
            else:
                edge = (y < 0.01) | (y > 0.99) if module == "Sigmoid" else y.abs() > 0.99
                saturated.append(edge.sum())
                outputs += y.numel()
        dead = torch.stack(dead_units).sum() / units if units else None
        sat = torch.stack(saturated).sum() / outputs if outputs else None
        return dead, sat

    def _note_nonfinite(self) -> None:
        if self.first_nonfinite_layer is not None:
            return
        for key, y in self._activations:
            if not torch.isfinite(y).all():
                self.first_nonfinite_layer = key.split(":", 2)[2]
        if self.first_nonfinite_layer is None:
            for name, params in self._owners.items():
                if not all(torch.isfinite(p).all() for p in params):
                    self.first_nonfinite_layer = name
                    break
        if self.first_nonfinite_layer is not None:
            print(
                f"rescue.watch: first non-finite value in layer {self.first_nonfinite_layer!r}",
                file=sys.stderr,
            )

    # -- reporting -----------------------------------------------------------------------

    def collect(self) -> Metrics:
        """The measurements made since the last report (then forgotten: no stale repeats)."""
        if self.optimizer is None:
            self._count += 1
            if self._armed:
                self._measure_gradients()
                self._finish_measurement()
                self._disarm()
            if self._count % self.every == 0:
                self._arm()
        pending, self._pending = self._pending, {}
        return pending

    def close(self) -> None:
        """Remove every hook; later reports carry no health metrics."""
        self._disarm()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        remove_report_source(self.collect)


def _per_unit(y: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """Per unit: active (non-zero) for at least one example of the batch."""
    moved = y.movedim(unit_dim, -1)
    return (moved != 0).reshape(-1, moved.shape[-1]).any(dim=0)


def _floating(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output:
        return _first_tensor(output[0])
    if isinstance(output, dict) and output:
        return _first_tensor(next(iter(output.values())))
    return None


def watch(
    model: Any, optimizer: torch.optim.Optimizer | None = None, every: int = DEFAULT_EVERY
) -> ModelWatch | None:
    """Measure ``model``'s health every ``every`` optimizer steps and send it with each report.

    Not a torch module: a one-line notice, and nothing is watched.
    """
    if not isinstance(model, torch.nn.Module):
        print(
            f"rescue.watch: {type(model).__name__} is not a torch.nn.Module; nothing is watched",
            file=sys.stderr,
        )
        return None
    return ModelWatch(model, optimizer, every)

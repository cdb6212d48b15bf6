"""Reports and a stand-in for training: ``reports`` calls of ``rescue.report`` with three
metrics, each after ``work_us`` microseconds of busy work (a training step), timed inside the
run. The loop's time per report is written to ``timing`` (a file path) so that the benchmark
can read it from outside the worker."""

import json
import time

import rescue


def train(config):
    n, work = config["reports"], config.get("work_us", 0) / 1e6
    start = time.perf_counter()
    for i in range(n):
        until = time.perf_counter() + work
        while time.perf_counter() < until:  # a step: busy, as training is
            pass
        rescue.report(loss=1.0 / (1 + i), grad_norm=0.5, lr=0.01)
    elapsed = time.perf_counter() - start
    with open(config["timing"], "a") as out:
        out.write(json.dumps({"reports": n, "seconds": elapsed}) + "\n")

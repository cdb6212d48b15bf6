"""A crash that raised on NaN or infinite values is a run that blew up (``non_finite``, which
the policy restarts with a smaller step); any other crash is a bug in the script."""

import os
import traceback
from pathlib import Path

import pytest
import torch

from rescue.detectors.crash_error import about_non_finite, error_text, headline
from rescue.detectors.run_monitor import RunMonitor
from rescue.detectors.stream import MetricStream
from rescue.policy import load_policy


def raised(fn) -> str:
    try:
        fn()
    except Exception:
        return traceback.format_exc()
    raise AssertionError("expected an exception")


def nan_normal():
    torch.distributions.Normal(torch.tensor([0.0, float("nan")]), torch.tensor([1.0, 1.0]))


def nan_multinomial():
    torch.multinomial(torch.tensor([0.5, float("inf")]), 1)


def missing_file():
    open("/nonexistent/info.txt")  # noqa: SIM115


@pytest.mark.parametrize("fn", [nan_normal, nan_multinomial])
def test_torch_errors_about_nan_values_are_read_as_non_finite(fn):
    text = raised(fn)
    assert about_non_finite(text)
    assert headline(text).split(":")[0] in ("ValueError", "RuntimeError")


def test_the_error_is_read_from_its_own_lines_not_from_the_code_in_the_frames():
    text = raised(missing_file)
    assert not about_non_finite(text + "\n")  # the frame's source line says `info.txt`
    assert headline(text).startswith("FileNotFoundError:")
    # Source lines that mention NaN do not make an error about NaN.
    framed = 'Traceback:\n  File "t.py", line 3\n    if math.isnan(x): raise KeyError\nKeyError: 3'
    assert not about_non_finite(framed)
    assert error_text(framed) == "KeyError: 3"


def test_a_multi_line_message_is_kept_whole():
    text = raised(nan_normal)
    assert "nan" in error_text(text).splitlines()[-1]


def watch_of(traceback_text: str) -> RunMonitor:
    watch = RunMonitor(load_policy("default"), MetricStream(), Path(os.devnull))
    watch.on_report({"loss": 2.0})
    watch.crashed(traceback_text)
    watch.close()
    return watch


def test_a_crash_on_nan_is_a_non_finite_finding_that_restarts():
    watch = watch_of(raised(nan_normal))
    assert watch.verdict is not None and watch.verdict.signature == "non_finite"
    assert watch.verdict.action == "restart"
    assert watch.verdict.reason.startswith("the training function raised on non-finite values")
    assert "traceback" in watch.verdict.evidence


def test_any_other_crash_is_a_crash_with_its_error_in_the_reason():
    watch = watch_of(raised(missing_file))
    assert watch.verdict is not None and watch.verdict.signature == "crash"
    assert "FileNotFoundError" in watch.verdict.reason

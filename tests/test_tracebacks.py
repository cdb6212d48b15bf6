"""A crash's traceback keeps the user's frames and the error, not Ray's or rescue's own, and no
terminal colour codes."""

from pathlib import Path

import ray

import rescue
from rescue.engine.tracebacks import user_traceback

RAY = Path(ray.__file__).resolve().parent
RESCUE = Path(rescue.__file__).resolve().parent


def test_only_the_users_frames_and_the_error_are_kept():
    text = (
        "\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=5503, ip=192.0.2.2, repr=run_user_train)\n"
        f'  File "{RAY}/tune/trainable/function_trainable.py", line 249, in _trainable_func\n'
        "    output = fn()\n"
        "             ^^^^\n"
        f'  File "{RESCUE}/tune_sink.py", line 77, in run_user_train\n'
        "    load_entry(script, entry)(dict(config))\n"
        '  File "/home/me/train.py", line 39, in train\n'
        '    raise RuntimeError("boom")\n'
        "RuntimeError: boom"
    )
    assert user_traceback(text).splitlines() == [
        "Traceback (most recent call last):",
        '  File "/home/me/train.py", line 39, in train',
        '    raise RuntimeError("boom")',
        "RuntimeError: boom",
    ]


def test_a_traceback_without_user_frames_is_kept_whole_but_uncoloured():
    plain = f'boom\n  File "{RAY}/x.py", line 1, in f\n    g()\nValueError: x'
    assert user_traceback(plain.replace("boom", "\x1b[31mboom\x1b[0m")) == plain

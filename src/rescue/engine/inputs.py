"""What a run must have reported: a run that ended without the metrics the cfg needs is a
configuration problem, never a healthy run and never a restart, in a rescue and in a sweep
alike."""

from __future__ import annotations

from pathlib import Path

from rescue import layout
from rescue.detectors.run_monitor import RunMonitor
from rescue.worker.command_line import CommandSpec


def check_inputs(
    monitor: RunMonitor, folder: Path, entry: str, command: CommandSpec | None
) -> None:
    """Record on ``monitor`` why the run's metrics are not what the cfg needs, if they are
    not: no report at all, a success metric never reported, a command.metrics pattern that
    never matched (named with stdout.log). ``entry``: the function run, ``command``: the
    plain script's spec, for the reason's words."""
    stream = monitor.stream
    log = folder / layout.STDOUT
    patterns = dict(command.patterns or {}) if command is not None else {}
    board = command.tensorboard if command is not None else None
    if stream.step < 0:
        if command is None:
            reason = f"{entry}() ended without a report: rescue.report was never called"
        elif board is not None:
            tags = ", ".join(board["tags"].values())
            reason = (
                f"no scalar tagged {tags} was written under command.tensorboard.logdir "
                f"{board['logdir']!r} during the run, and no line of {log} held metrics "
                f"(see {folder / layout.STDERR})"
            )
        elif patterns:
            shown = ", ".join(f"{n}: '{p}'" for n, p in patterns.items())
            reason = f"no line of {log} matched command.metrics ({shown})"
        else:
            reason = (
                f"no line of {log} held a JSON object of metrics "
                "(give command.metrics regular expressions for its lines)"
            )
        monitor.misconfigured(reason, patterns=patterns, stdout=str(log))
        return
    missing = [name for name in stream.targets if name not in stream.series]
    if missing:
        reported = ", ".join(sorted({*stream.series, *stream.distributions})) or "none"
        reason = f"success metric(s) {', '.join(missing)} never reported (reported: {reported})"
        unmatched = {n: p for n, p in patterns.items() if n in missing}
        if unmatched:
            shown = ", ".join(f"{n}: '{p}'" for n, p in unmatched.items())
            reason += f"; no line of {log} matched {shown}"
        monitor.misconfigured(reason, missing=missing, stdout=str(log) if command else None)
        return
    for name, pattern in patterns.items():
        if name not in stream.series and name not in stream.distributions:
            monitor.notes.append(
                f"command.metrics {name}: '{pattern}' never matched a line of {log}"
            )

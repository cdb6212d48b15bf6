"""The parts of rescue the corpus drives. ``--variant NAME`` runs another version of rescue
(given with PYTHONPATH): one from before its modules moved into subpackages (the previous
release) has them at the top of the package, so both places are tried."""

# ruff: noqa: F401
try:
    from rescue.detectors.findings import Finding

    try:
        from rescue.engine.lane import Execution, Monitor
    except ImportError:  # before runs were the trials of one experiment
        from rescue.engine.ray_runner import Execution, Monitor
    from rescue.engine.record import RescueReport, RunRecord
    from rescue.engine.supervisor import Job, Supervisor
    from rescue.search.study import RescueStudy, default_storage
    from rescue.worker.command_line import CommandSpec, build_argv
    from rescue.worker.entrypoint import load_entry
    from rescue.worker.output_metrics import OutputParser
    from rescue.worker.reporting import Metrics, install_sink
except ImportError:
    from rescue.command_line import CommandSpec, build_argv
    from rescue.entrypoint import load_entry
    from rescue.findings import Finding
    from rescue.output_metrics import OutputParser
    from rescue.ray_runner import Execution, Monitor
    from rescue.record import RescueReport, RunRecord
    from rescue.reporting import Metrics, install_sink
    from rescue.study import RescueStudy, default_storage
    from rescue.supervisor import Job, Supervisor

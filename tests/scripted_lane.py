"""A sweep's loop driven without Ray: trials run on a scripted lane, or by hand, each report
fed to the trial's monitor as the Ray Tune adapter feeds it, each trial ended as the lane
(:class:`rescue.engine.lane.Lane`) would say it ended."""

from rescue.engine.lane import Execution


class ScriptedLane:
    """Runs each request by feeding the reports ``script(params)`` yields to its monitor,
    until the monitor says stop."""

    def __init__(self, script):
        self.script = script
        self.requests = []

    def run(self, request):
        self.requests.append(request)
        request.monitor.begin()
        for metrics in self.script(request.params):
            if request.monitor.on_report(metrics):
                return Execution("stopped")
        return Execution("completed")


class HandTrial:
    """The loop's next trial, reported and ended by hand (several may be in flight)."""

    def __init__(self, loop):
        self.loop = loop
        self.live = loop.next_trial()
        self.stopped = False

    @property
    def config(self):
        return None if self.live is None else self.live.trial.config

    @property
    def request(self):
        return self.live.request

    def report(self, metrics) -> bool:
        stop = self.live.request.monitor.on_report(metrics)
        self.stopped = self.stopped or stop
        return stop

    def checkpoint(self, report, path):
        self.live.request.on_checkpoint(report, path)

    def end(self, error=None):
        status = "crashed" if error else "stopped" if self.stopped else "completed"
        self.loop.ended(self.live, Execution(status, error))
        return self.live.trial

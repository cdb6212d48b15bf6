"""Reports go from the worker to the driver in batches, and the driver sees every one, in
order; a checkpoint goes with its own report; what waits is sent when the training goes
quiet."""

import threading
import time

import pytest

from rescue.engine.experiment import last_report, reports_in
from rescue.worker.report_batch import COUNT_KEY, Batcher, unpack


class Sent:
    def __init__(self):
        self.results, self.checkpoints = [], []

    def __call__(self, result, checkpoint):
        self.results.append(result)
        self.checkpoints.append(checkpoint)

    def reports(self):
        return [m for r in self.results for m in reports_in(r)]


def test_a_fast_run_sends_few_results_and_the_driver_sees_every_report_in_order():
    sent = Sent()
    batcher = Batcher(sent, seconds=60)
    for i in range(500):
        batcher.add({"loss": 1.0 / (i + 1), "hist": [0.5, float(i)]})
    batcher.close()
    assert len(sent.results) == 2  # the first at once, the rest at the end
    assert [m["loss"] for m in sent.reports()] == [1.0 / (i + 1) for i in range(500)]
    assert sent.reports()[7]["hist"] == [0.5, 7.0]
    assert [last_report(r) for r in sent.results] == [0, 499]


def test_a_checkpoint_goes_with_its_own_report():
    sent = Sent()
    batcher = Batcher(sent, seconds=60)
    for i in range(10):
        batcher.add({"loss": float(i)}, checkpoint={"step": i} if i == 6 else None)
    batcher.close()
    (index,) = [k for k, c in enumerate(sent.checkpoints) if c is not None]
    assert sent.checkpoints[index] == {"step": 6}
    assert last_report(sent.results[index]) == 6
    assert unpack(sent.results[index])[-1] == {"loss": 6.0}


def test_non_finite_values_travel():
    sent = Sent()
    batcher = Batcher(sent, seconds=60)
    batcher.add({"loss": 1.0})
    batcher.add({"loss": float("nan")})
    batcher.add({"loss": float("inf")})
    batcher.close()
    values = [m["loss"] for m in sent.reports()]
    assert values[0] == 1.0 and values[1] != values[1] and values[2] == float("inf")


def test_what_waits_is_sent_by_the_timer_when_the_training_goes_quiet():
    sent = Sent()
    batcher = Batcher(sent, seconds=0.1, timer=True)
    for i in range(5):
        batcher.add({"loss": float(i)})
    time.sleep(0.5)  # a hang, or a long evaluation
    assert len(sent.reports()) == 5
    batcher.close()


def test_a_stop_met_by_the_timer_ends_the_training_thread_at_its_next_report():
    def send(result, checkpoint):
        if result[COUNT_KEY] > 1:
            raise SystemExit(0)  # what Ray Tune's report does in a trial it stopped

    batcher = Batcher(send, seconds=0.05, timer=True)
    batcher.add({"loss": 1.0})
    batcher.add({"loss": 2.0})
    time.sleep(0.3)
    assert batcher.ended
    with pytest.raises(SystemExit):
        batcher.add({"loss": 3.0})
    batcher.close()  # sends nothing more


def test_one_send_at_a_time():
    active, most = [0], [0]
    lock = threading.Lock()

    def send(result, checkpoint):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1

    batcher = Batcher(send, seconds=0.005, timer=True)
    for i in range(200):
        batcher.add({"loss": float(i)})
        time.sleep(0.001)
    batcher.close()
    assert most[0] == 1


def test_the_training_goes_on_while_a_slow_driver_takes_a_batch_and_no_report_is_lost():
    # The driver takes 50 ms a batch of 100 reports, as long as 100 training steps take: the
    # training waits for none of the 20 sends (1 s in all), only for the last at its end.
    sent = Sent()

    def slow(result, checkpoint):
        time.sleep(0.05)
        sent(result, checkpoint)

    def steps(batcher=None):
        start = time.perf_counter()
        for i in range(2000):
            time.sleep(0.0005)
            if batcher is not None:
                batcher.add({"loss": float(i)}, checkpoint={"step": i} if i == 1234 else None)
        return time.perf_counter() - start

    alone = steps()
    batcher = Batcher(slow, seconds=60, most=100, timer=True)
    training = steps(batcher)
    batcher.close()
    assert [m["loss"] for m in sent.reports()] == [float(i) for i in range(2000)]
    (index,) = [k for k, c in enumerate(sent.checkpoints) if c is not None]
    assert last_report(sent.results[index]) == 1234 and sent.checkpoints[index] == {"step": 1234}
    assert training < alone + 0.5  # waiting for each send would add 1 s


def test_an_error_in_the_sender_thread_reaches_the_training_at_its_next_report():
    def send(result, checkpoint):
        if result[COUNT_KEY] > 1:
            raise ConnectionError("driver gone")

    batcher = Batcher(send, seconds=0.05, timer=True)
    batcher.add({"loss": 1.0})
    batcher.add({"loss": 2.0})
    time.sleep(0.3)
    with pytest.raises(ConnectionError, match="driver gone"):
        batcher.add({"loss": 3.0})


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="seconds > 0"):
        Batcher(Sent(), seconds=0)


def test_a_result_from_ray_tune_report_itself_is_one_report():
    result = {"loss": 0.5, "training_iteration": 4, "time_this_iter_s": 0.1}
    assert reports_in(result) == [{"loss": 0.5}]
    assert last_report(result) == 3


def test_reports_after_the_verdict_are_kept_and_counted_but_not_judged(tmp_path):
    from rescue.detectors.run_monitor import RunMonitor
    from rescue.detectors.stream import MetricStream
    from rescue.policy import load_policy

    history = tmp_path / "metrics.jsonl"
    watch = RunMonitor(load_policy("default"), MetricStream(), history)
    batch = [{"loss": 1.0}, {"loss": 0.9}, {"loss": float("nan")}, {"loss": 5.0}, {"loss": 7.0}]
    stops = [watch.on_report(m) for m in batch]  # one batch, fed whole
    watch.close()
    assert stops == [False, False, True, True, True]
    assert watch.verdict.signature == "non_finite" and watch.verdict.step == 2
    assert watch.stream.step == 2 and len(watch.health) == 3  # as at the verdict
    assert watch.received == 5
    rows = history.read_text().splitlines()
    assert len(rows) == 5 and rows[-1] == '{"step": 4, "metrics": {"loss": 7.0}}'


def test_reports_past_the_declared_length_are_not_part_of_the_run(tmp_path):
    from rescue.detectors.run_monitor import RunMonitor
    from rescue.detectors.stream import MetricStream
    from rescue.policy import load_policy

    watch = RunMonitor(load_policy("default"), MetricStream(), tmp_path / "m.jsonl", length=3)
    stops = [watch.on_report({"loss": 1.0 / (i + 1)}) for i in range(6)]
    watch.close()
    assert stops == [False, False, True, True, True, True]
    assert watch.received == 3 and len((tmp_path / "m.jsonl").read_text().splitlines()) == 3

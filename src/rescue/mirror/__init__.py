"""Mirrors: each run's metrics, findings and remedies copied, as they happen, to the tracker a
team already looks at (MLflow, TensorBoard). A mirror follows the supervisor's display events;
report.json and metrics.jsonl stay the record, so a mirror that fails is switched off with
one warning and the rescue goes on."""

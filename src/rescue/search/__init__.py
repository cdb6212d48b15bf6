"""The Optuna adapters: every run is a trial of one study (a rescue's, or a sweep's)."""

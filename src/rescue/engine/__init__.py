"""The run lifecycle: the Ray Tune runners, the rescue and sweep loops, their records, resume,
interruption and the output folder."""

"""The generalisation corpus: cases (a training program, its cfg.yaml, the ground truth),
direct recordings of their runs, and the evaluation of rescue on them (``bench/corpus.py``)."""

"""Evaluation of frozen features: weighted k-NN (``knn``) and the evaluator a run calls
every N steps (``evaluator``)."""

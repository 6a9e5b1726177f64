"""The Megatron train actors: per-rank workers (worker.py) under Ray (group.py), fed TrainBatch (batch.py)."""

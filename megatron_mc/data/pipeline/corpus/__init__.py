"""The bundled corpus of `mc-data run`'s embedded default: problems.jsonl and eval_set.jsonl, written by
make_corpus.py (python -m megatron_mc.data.pipeline.corpus.make_corpus)."""

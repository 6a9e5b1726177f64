"""Training data: the problem sampler, problem sources and the embedded default's tasks and tokenizer."""

from megatron_mc.weights.buckets import iter_hf_buckets, iter_hf_tensors

__all__ = ["iter_hf_buckets", "iter_hf_tensors"]

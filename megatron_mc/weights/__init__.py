from megatron_mc.weights.buckets import iter_hf_buckets

__all__ = ["iter_hf_buckets"]

"""What `mc-plan --search` prints: the assumptions, the best layouts with why each beats the next, or,
when nothing fits, the closest layouts and what they lack."""
from __future__ import annotations

from megatron_mc.planning.memory import GIB
from megatron_mc.planning.search import Candidate, SearchResult
from megatron_mc.planning.step_time import Assumptions

SAME_MEMORY_GIB = 0.5
CLOSE = 0.01  # step times within 1% are within the model's error


def assumptions_text(a: Assumptions) -> str:
    decode = (f"{a.decode_tokens_per_s:g} decode tokens/s per engine" if a.decode_tokens_per_s
              else f"decode from an HBM roofline at {a.hbm_gbs:g} GB/s")
    overlap = "rollout overlapped with training when disaggregated" if a.async_rollout else "rollout, then training"
    return (f"assumed: {a.tflops:g} TFLOP/s sustained per GPU, NVLink {a.intra_node_gbs:g} GB/s, inter-node "
            f"{a.inter_node_gbs:g} GB/s per GPU, {decode}; mean sequence {a.sequence_fill:g} of the maximum; "
            f"{overlap}; {a.reserve_gib:g} GiB per GPU kept free")


def why_better(better: Candidate, worse: Candidate) -> str:
    """E.g. 'same memory, 12% less step time: 3.1 s less tp comm'."""
    memory = (worse.peak - better.peak) / GIB
    memory_text = ("same memory" if abs(memory) < SAME_MEMORY_GIB
                   else f"{abs(memory):.1f} GiB {'less' if memory > 0 else 'more'} memory per GPU")
    saved = worse.step - better.step
    if saved <= 1e-9:
        return f"{memory_text}, same step time"
    causes = sorted(set(better.times) | set(worse.times),
                    key=lambda k: worse.times.get(k, 0.0) - better.times.get(k, 0.0), reverse=True)
    cause = causes[0]
    gain = worse.times.get(cause, 0.0) - better.times.get(cause, 0.0)
    share = 100 * saved / worse.step
    return (f"{memory_text}, {share:.{0 if share >= 10 else 1}f}% less step time: {gain:.1f} s less {cause}"
            + _layout_difference(better, worse))


def _layout_difference(better: Candidate, worse: Candidate) -> str:
    a, b = _fields(better), _fields(worse)
    changed = [f"{k} {b[k]} -> {a[k]}" for k in a if a[k] != b[k]]
    return f" ({', '.join(changed)})" if changed else ""


def _fields(c: Candidate) -> dict:
    p = c.par
    return {"tp": p.tp, "pp": p.pp, "vpp": p.virtual_stages, "cp": p.cp, "ep": p.ep, "etp": p.etp,
            "recompute": c.recompute.label(), "placement": c.mode, "engine GPUs": c.engine_gpus,
            "engine tp": c.engine_tp}


def candidate_lines(rank: int, c: Candidate) -> list[str]:
    times = ", ".join(f"{name} {seconds:.1f}" for name, seconds in c.times.items() if seconds >= 0.05)
    keys = " ".join(f"--set {k}={_yaml(v)}" for k, v in c.config_keys().items())
    return [f"#{rank}  step {c.step:.0f} s ({times})",
            f"    {c.placement_text()}; engines hold {c.sequences_in_kv} mean-length sequences each",
            f"    train {c.layout_text()}; peak {c.peak / GIB:.1f} GiB per GPU "
            f"(" + ", ".join(f"{k} {v / GIB:.1f}" for k, v in c.train_bytes.items()) + ")",
            f"    {keys}"]


def _yaml(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(value) + "]"
    return str(value)


def _configured_lines(result: SearchResult) -> list[str]:
    own = result.configured
    if isinstance(own, str):
        return [f"the config's own layout: not compared ({own})"]
    head = f"the config's own layout: {own.placement_text()}; train {own.layout_text()}"
    if own.lacks:
        return [head, f"    does not fit: {own.lacks}"]
    return [head, f"    step {own.step:.0f} s, peak {own.peak / GIB:.1f} GiB per GPU; ranks {own.rank} of {result.fitting} that fit"]


def format_search(result: SearchResult, top: int) -> str:
    lines = [f"layout search: {result.gpus} GPUs of {result.gpu_memory_gib:g} GiB, "
             f"{result.considered} train layouts tried, {result.fitting} distinct ones fit", assumptions_text(result.assumptions), ""]
    lines += _configured_lines(result) + [""]
    if result.fits:
        best = result.fits[0].step
        close = [c for c in result.fits if c.step <= best * (1 + CLOSE)]
        if len(close) > 1:
            frugal = min(close, key=lambda c: c.peak)
            which = ("#1 is also the one with the least memory" if frugal is close[0] else
                     f"the one with the least memory: {frugal.layout_text()} ({frugal.mode}), "
                     f"peak {frugal.peak / GIB:.1f} GiB")
            lines += [f"{len(close)} layouts are within {100 * CLOSE:.0f}% of the best step time, closer than this "
                      f"model can tell apart; {which}", ""]
        shown = result.fits[:top]
        for rank, c in enumerate(shown, 1):
            lines += candidate_lines(rank, c)
            if rank < len(result.fits):
                lines.append(f"    beats #{rank + 1}: {why_better(c, result.fits[rank])}")
            lines.append("")
        return "\n".join(lines).rstrip()
    lines.append(f"nothing fits in {result.gpu_memory_gib:g} GiB per GPU "
                 f"({result.gpu_memory_gib - result.assumptions.reserve_gib:g} GiB usable). Closest:")
    for c in result.closest[:top]:
        over = (c.peak - c.budget) / GIB
        biggest = max(c.train_bytes, key=c.train_bytes.get)
        short = f"lacks {over:.1f} GiB: " if over > 0 else ""
        lines += [f"  {c.placement_text()}; train {c.layout_text()}",
                  f"    {short}{c.lacks} (largest part: {biggest} {c.train_bytes[biggest] / GIB:.1f} GiB)"]
    lines.append("more GPUs, larger GPUs (--gpu-memory), or a smaller train.micro_batch_tokens would help")
    return "\n".join(lines)

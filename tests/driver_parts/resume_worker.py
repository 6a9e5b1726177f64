"""A stand-in training loop for the kill-and-resume test: samples problems, keeps a history, checkpoints.

Usage: resume_worker.py RUN_DIR TOTAL_STEPS BATCH INTERVAL [--hang-in step|save --hang-at STEP]
It prints `step N` when step N has sampled its batch and `saving N` inside a save, then hangs there
when asked, so the test can SIGKILL it at that exact point.
"""
import argparse
import json
import time
from pathlib import Path

from megatron_mc.data.sampler import ProblemSampler
from megatron_mc.run_state import (RunState, begin_checkpoint, find_resume_checkpoint, finish_checkpoint,
                                   load_run_state, write_atomic)

NUM_PROBLEMS = 13
SEED = 7


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("total_steps", type=int)
    parser.add_argument("batch", type=int)
    parser.add_argument("interval", type=int)
    parser.add_argument("--hang-in", choices=["step", "save"])
    parser.add_argument("--hang-at", type=int, default=-1)
    args = parser.parse_args()

    sampler = ProblemSampler(NUM_PROBLEMS, SEED)
    history, start = [], 0
    resume_from = find_resume_checkpoint(args.run_dir, "auto")
    if resume_from is not None:
        state = load_run_state(resume_from)
        sampler.load_state_dict(state.sampler)
        history, start = state.metrics_history, state.step
    print(f"resumed {start}", flush=True)

    for step in range(start + 1, args.total_steps + 1):
        history.append({"step": step, "problems": sampler.next_batch(args.batch)})
        print(f"step {step}", flush=True)
        if args.hang_in == "step" and step == args.hang_at:
            time.sleep(600)
        if step % args.interval == 0:
            folder = begin_checkpoint(Path(args.run_dir) / "checkpoints", step)
            (folder / "model" / "weights.bin").write_bytes(b"\0" * 1024)
            print(f"saving {step}", flush=True)
            if args.hang_in == "save" and step == args.hang_at:
                time.sleep(600)
            finish_checkpoint(folder, RunState(step, sampler.state_dict(), {"temperature": 1.0}, history),
                              keep_last=2)
    write_atomic(Path(args.run_dir) / "history.json", json.dumps(history))


if __name__ == "__main__":
    main()

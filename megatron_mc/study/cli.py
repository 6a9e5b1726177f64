"""`mc-study plan|launch|status|report STUDY.yaml`: controlled RL studies (see megatron_mc/study/study_file.py
for the study file).

  plan    the runs, their run dirs and each run's layout and per-GPU memory check; starts nothing
  launch  start the runs that are not complete (interrupted ones resume): locally one after another,
          or as Slurm jobs through the study's launch script
  status  each run's state, step, last held-out figures and failure reason
  report  OUT/report/: the comparison table, learning curves per axis and report.md linking them
"""
from __future__ import annotations

import argparse
import os
import sys

from megatron_mc.run_state import ResumeError
from megatron_mc.study.runs import expand
from megatron_mc.study.study_file import load_study
from megatron_mc.typed_config import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mc-study", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("command", choices=["plan", "launch", "status", "report"])
    parser.add_argument("study", help="the study file (YAML; see examples/studies/)")
    parser.add_argument("--verbose", action="store_true", help="plan: the full per-GPU memory plan of each run")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        study = load_study(args.study)
        runs = expand(study)
        if args.command == "plan":
            from megatron_mc.study.plan import format_study_plan

            print(format_study_plan(study, runs, args.verbose))
            return 0
        if args.command == "status":
            from megatron_mc.study.status_table import format_status

            print(format_status(runs))
            return 0
        if args.command == "report":
            from megatron_mc.study.report import write_report

            print(write_report(study, runs))
            return 0
        if study.spec.launcher.kind == "slurm":
            from megatron_mc.study.launch_slurm import launch_slurm

            return launch_slurm(study, runs)
        from megatron_mc.study.launch_local import launch_local

        return launch_local(runs)
    except (ConfigError, ResumeError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"mc-study: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mc-study: interrupted; `mc-study launch` again resumes the unfinished runs", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""mc-data: the MicroCoder dataset pipeline.

    mc-data run                                   the embedded default end to end (bundled corpus, HumanEval,
                                                  tiny tasks; the embedded engine as predictor and policy)
    mc-data run --config data.yaml [--out DIR] [--set process.test_cap.max_tests=10]
    mc-data collect|process|filter|verify --config data.yaml [--input FILE]

Each stage writes OUT/<stage>/kept.jsonl and rejected.jsonl and its entry in OUT/manifest.json; a stage
reads the previous stage's kept.jsonl (or --input). A finished stage with the same config and input is
skipped; an interrupted one resumes from its checkpoints. verify (and run) write OUT/train.jsonl, which
`mc-train` reads with data.source: file.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import yaml

from judge.problem import ProblemError
from megatron_mc.data.pipeline.config import PipelineConfig, load_config, section_dict
from megatron_mc.data.pipeline.difficulty.llm_predictor import LLMEndpointError
from megatron_mc.data.pipeline.filter import SCORED_NAME
from megatron_mc.data.pipeline.jsonl import read_records
from megatron_mc.data.pipeline.manifest import MANIFEST_NAME, Manifest, content_hash, file_hash
from megatron_mc.data.pipeline.record import STAGES, ProblemRecord
from megatron_mc.data.pipeline.stage import KEPT_NAME, Resources, run_stage
from megatron_mc.data.pipeline.jsonl import write_atomic
from megatron_mc.typed_config import ConfigError, to_dict

TRAIN_NAME = "train.jsonl"


def _stage_function(name: str):
    """The stage's entry point, imported when used (each stage lives in its own module)."""
    if name == "collect":
        from megatron_mc.data.pipeline.collect import run_collect
        return lambda records, cfg, ctx: run_collect(cfg, ctx)
    if name == "process":
        from megatron_mc.data.pipeline.process import run_process
        return run_process
    if name == "filter":
        from megatron_mc.data.pipeline.filter import run_filter
        return run_filter
    from megatron_mc.data.pipeline.verify import run_verify
    return run_verify


def _collect_input_hash(cfg: PipelineConfig) -> str:
    """What the collect stage reads: each source path's size and modification time."""
    seen = []
    for source in cfg.collect.sources:
        path = Path(source.path).expanduser() if source.path else None
        if path is not None and path.exists():
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            seen.append([[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files])
        else:
            seen.append(None)
    return content_hash(seen)


def stage_config_hash(cfg: PipelineConfig, name: str) -> str:
    """What decides a stage's output besides its input: its own section, plus the engine for filter (the
    difficulty predictor and the reference policy run on it) and the evaluation sets' contents for process
    (decontamination reads them)."""
    hashed = {"section": section_dict(cfg, name)}
    if name == "filter":
        hashed["engine"] = to_dict(cfg.engine)
    if name == "process":
        hashed["eval_sets"] = [_eval_set_hash(e.path) for e in cfg.process.decontaminate.eval_sets]
    return content_hash(hashed)


def _eval_set_hash(path: str | None) -> str | None:
    from megatron_mc.data.pipeline.decontaminate import BUNDLED_EVAL_SET

    return file_hash(Path(path).expanduser() if path else BUNDLED_EVAL_SET)


class Pipeline:
    def __init__(self, cfg: PipelineConfig, out_dir: Path, quiet: bool = False) -> None:
        self.cfg = cfg
        self.out_dir = out_dir
        self.quiet = quiet
        self.manifest = Manifest(out_dir / MANIFEST_NAME)
        self.engine = None
        self.resources = Resources(cfg.workers, engine_url=cfg.engine.url,
                                   start_engine=self._start_engine if cfg.engine.embedded else None, cpus=cfg.cpus)

    def _start_engine(self) -> str:
        from megatron_mc.data.pipeline.engine import EmbeddedEngine

        self.engine = EmbeddedEngine(self.cfg.engine, self.out_dir / "engine.log")
        if not self.quiet:
            print(f"mc-data: starting the embedded engine (log {self.engine.log_path})", file=sys.stderr)
        url = self.engine.start()
        self.manifest.set("engine_url", url)
        return url

    def run(self, stages: list[str], input_path: Path | None) -> list[ProblemRecord]:
        start = time.monotonic()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.out_dir / "config.yaml", yaml.safe_dump(to_dict(self.cfg), sort_keys=False))
        self.manifest.set("config_hash", content_hash(to_dict(self.cfg)))
        records: list[ProblemRecord] | None = None
        try:
            for name in stages:
                records, input_path = self._run_one(name, records, input_path), self.out_dir / name / KEPT_NAME
        finally:
            self.resources.close()
            if self.engine is not None:
                self.engine.stop()
        if "verify" in stages:
            shutil.copyfile(self.out_dir / "verify" / KEPT_NAME, self.out_dir / f".{TRAIN_NAME}.tmp")
            (self.out_dir / f".{TRAIN_NAME}.tmp").replace(self.out_dir / TRAIN_NAME)
            self.manifest.set("train_file", TRAIN_NAME)
            self.manifest.set("train_problems", len(records))
        self.manifest.set("seconds_this_invocation", round(time.monotonic() - start, 3))
        return records

    def _run_one(self, name: str, records: list[ProblemRecord] | None, input_path: Path | None):
        before = None
        if name == "collect":
            input_hash, count_in = _collect_input_hash(self.cfg), None
        else:
            previous = self.out_dir / STAGES[STAGES.index(name) - 1] / KEPT_NAME
            if input_path is None:
                input_path = previous
            if not input_path.is_file():
                raise ProblemError(f"{input_path}: no input for stage {name!r}; run the stage before it "
                                   "(or mc-data run), or give --input FILE")
            if records is None:
                records = read_records(input_path)
            input_hash, count_in = file_hash(input_path), len(records)
            scored = self.out_dir / "filter" / SCORED_NAME
            if name == "verify" and input_path == previous and scored.is_file():
                before = scored   # every problem the filter scored: the statistics' "before selection"
        stage_cfg = getattr(self.cfg, name)
        function = _stage_function(name)

        def run(ctx):
            if before is None:
                return function(records, stage_cfg, ctx)
            return function(records, stage_cfg, ctx, before=read_records(before))

        return run_stage(name, run, run_dir=self.out_dir,
                         manifest=self.manifest, config_hash=stage_config_hash(self.cfg, name),
                         input_hash=input_hash, count_in=count_in, workers=self.cfg.workers, quiet=self.quiet,
                         resources=self.resources)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mc-data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=[*STAGES, "run"])
    parser.add_argument("--config", help="data.yaml (default: the embedded default)")
    parser.add_argument("--out", help="the run folder (default: the config's out_dir)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key, e.g. --set process.test_cap.max_tests=10 (repeatable; YAML values)")
    parser.add_argument("--input", help="the input JSONL of process, filter or verify (default: the previous "
                        "stage's kept.jsonl); not for run or collect")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.input and args.command in ("run", "collect"):
        print(f"mc-data: error: --input is the input of one stage after collect (process, filter or verify); "
              f"{args.command} reads the configured collect.sources", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config, args.overrides)
        out_dir = Path(args.out or cfg.out_dir).expanduser()
        stages = list(STAGES) if args.command == "run" else [args.command]
        records = Pipeline(cfg, out_dir, quiet=args.quiet).run(stages, Path(args.input) if args.input else None)
    except (ConfigError, ProblemError, FileNotFoundError, ValueError, LLMEndpointError) as e:
        # bad config or input, or an endpoint that does not answer: a message, not a traceback
        print(f"mc-data: error: {e}", file=sys.stderr)
        return 2
    print(f"mc-data: {args.command}: {len(records)} problems kept; manifest {out_dir / MANIFEST_NAME}"
          + (f"; training set {out_dir / TRAIN_NAME}" if args.command in ("run", "verify") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

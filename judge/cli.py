"""mc-judge: judge submissions from the command line.

  mc-judge run --problem PROBLEM --code FILE [--language python|cpp|c++20|...] [--all-tests]
  mc-judge batch --problems P.jsonl --submissions S.jsonl --out R.jsonl [--workers N] [--all-tests]
  mc-judge serve [--host 127.0.0.1] [--port 8377] [--workers N] [--max-queue N] [--problems P.jsonl]
  mc-judge audit --packages DIR [--workers N] [--out report.json]
  (run, batch, serve and audit also take [--cpp-std STD] [--time-limit-scale X], the pool's settings)
  (every command takes [--cpus auto|none|LIST]: the CPUs the workers are pinned to, one each, judge/affinity.py)
  mc-judge demo

`run` prints one JSON result and exits 0 whenever the judge worked, whatever the verdict. Bad input
(missing file, bad JSON, unknown language, a problem row that breaks the schema) exits 2 with a message
naming the file, row and key.

`audit` judges the labelled submissions (submissions/accepted, wrong_answer, ...) of every Kattis/ICPC problem
package under DIR and prints agreement per label (rules in judge/audit.py); it exits 0 when every judged
submission agrees and every package loads, 1 otherwise, 2 when DIR holds no package.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from judge.affinity import AUTO, check_cpu_choice, worker_cpus
from judge.audit import audit as audit_packages
from judge.audit import format_table, language_of, write_report
from judge.loaders import load_problems
from judge.pool import JudgePool, default_workers
from judge.problem import CPP_STANDARDS, Problem, ProblemError
from judge.runner import normalize_language

SAMPLES = Path(__file__).resolve().parent / "samples"


class InputError(ValueError):
    """Bad command-line input; the message says which file, row or key and what to do."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (InputError, ProblemError) as e:
        print(f"mc-judge {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mc-judge", description="Sandboxed judge for code submissions.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="judge one file against one problem; prints one JSON object")
    run.add_argument("--problem", required=True, help="problem JSON file or Kattis problem package folder")
    run.add_argument("--code", required=True, help="source file of the submission")
    run.add_argument("--language", help="python, cpp, or a C++ standard such as c++20 (default: from the suffix)")
    run.add_argument("--all-tests", action="store_true", help="run every test instead of stopping at the first failure")
    batch = commands.add_parser("batch", help="judge a JSONL file of submissions")
    batch.add_argument("--problems", required=True, help="problems (.jsonl of normalized problems, or a dataset file)")
    batch.add_argument("--submissions", required=True, help='JSONL rows {"id", "problem_id", "code", "language"}')
    batch.add_argument("--out", required=True, help="results JSONL, one row per submission")
    batch.add_argument("--workers", type=int, default=default_workers())
    batch.add_argument("--all-tests", action="store_true")
    serve = commands.add_parser("serve", help="HTTP judge service (POST /judge, GET /health)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8377)
    serve.add_argument("--workers", type=int, default=default_workers())
    serve.add_argument("--max-queue", type=int, default=256, help="waiting submissions beyond the running ones; more get 503")
    serve.add_argument("--problems", help="problems the service knows by id (requests may then send problem_id)")
    audit = commands.add_parser("audit", help="judge the labelled submissions of problem packages; "
                                               "report agreement per label")
    audit.add_argument("--packages", required=True,
                       help="a Kattis/ICPC problem package folder, or a folder holding packages at any depth")
    audit.add_argument("--workers", type=int, default=default_workers())
    audit.add_argument("--out", help="JSON report (written to a temporary file, then renamed into place)")
    for command in (run, batch, serve, audit):
        command.add_argument("--cpp-std", choices=CPP_STANDARDS,
                             help="C++ standard where the problem names none (default: gnu++20 where g++ has it)")
        command.add_argument("--time-limit-scale", type=_positive, default=1.0,
                             help="multiplies every time limit, for slow or contended machines (default 1)")
    demo = commands.add_parser("demo", help="judge the bundled sample problems and print a table")
    demo.add_argument("--workers", type=int, default=default_workers())
    for command in (run, batch, serve, audit, demo):
        command.add_argument("--cpus", type=_cpu_choice, default=AUTO,
                             help="CPUs the workers are pinned to, one each, round robin: a list such as '0-3,8', "
                                  "'none', or 'auto' (the default: those this process may use, when there are at "
                                  "least as many workers)")
    return parser


def _run(args: argparse.Namespace) -> int:
    problem = _one_problem(args.problem)
    code_path = Path(args.code)
    code = _read_text(code_path, "--code")
    language = _language(args.language, code_path)
    with _pool(args, 1) as pool:
        result = pool.judge(problem, code, language, args.all_tests)
    print(json.dumps(result.to_dict()))
    return 0


def _batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    problems = _problems_by_id(args.problems)
    rows = _submission_rows(Path(args.submissions), problems)
    out = Path(args.out)
    partial = out.with_name(out.name + ".partial")
    verdicts: Counter[str] = Counter()
    submissions = [(problems[r["problem_id"]], r["code"], r["language"]) for r in rows]
    try:
        with _pool(args, args.workers) as pool, partial.open("w") as sink, tqdm(
            total=len(rows), unit="sub", file=sys.stderr, disable=not sys.stderr.isatty()
        ) as progress:
            for index, result in pool.judge_iter(submissions, args.all_tests):
                # Each row is on disk as soon as it is judged: an interrupted batch keeps its .partial file.
                sink.write(json.dumps({"id": rows[index]["id"], **result.to_dict()}) + "\n")
                sink.flush()
                verdicts[result.verdict.value] += 1
                progress.update()
    except KeyboardInterrupt:
        print(f"mc-judge batch: interrupted; {sum(verdicts.values())} results kept in {partial}", file=sys.stderr)
        raise
    os.replace(partial, out)
    summary = ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items()))
    print(f"mc-judge batch: {len(rows)} submissions judged ({summary}); results in {out}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from judge.service import serve

    problems = _problems_by_id(args.problems) if args.problems else {}
    serve(args.host, args.port, args.workers, args.max_queue, problems, args.cpp_std, args.time_limit_scale,
          _checked_cpus(args.cpus))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    root = Path(args.packages)
    if not root.is_dir():
        raise InputError(f"--packages {root}: no such folder")
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise InputError(f"--out {args.out}: its folder does not exist; create it or write the report elsewhere")
    with _pool(args, args.workers) as pool, tqdm(
        unit="sub", file=sys.stderr, disable=not sys.stderr.isatty()
    ) as progress:
        report = audit_packages(root, pool, progress.update)
    for error in report.errors:
        print(f"mc-judge audit: error: package {error['package']} was not audited: {error['error']}", file=sys.stderr)
    if report.packages == 0 and not report.errors:
        raise InputError(f"--packages {root}: no problem package in this folder or below it (a package is a folder "
                         "with data/sample and data/secret, and submissions/ for the audit)")
    for row in report.skipped:
        print(f"mc-judge audit: skipped {row['problem']}/{row['file']}: {row['reason']}", file=sys.stderr)
    print(format_table(report))
    if args.out:
        write_report(report, args.out)
        print(f"mc-judge audit: report in {args.out}", file=sys.stderr)
    return 0 if not report.disagreements and not report.errors else 1


def _demo(args: argparse.Namespace) -> int:
    entries = json.loads((SAMPLES / "demo.json").read_text())
    problems = {e["problem"]: _one_problem(str(SAMPLES / e["problem"])) for e in entries}
    submissions = [
        (problems[e["problem"]], (SAMPLES / e["solution"]).read_text(), _language(None, Path(e["solution"])))
        for e in entries
    ]
    with JudgePool(workers=args.workers, cpus=_checked_cpus(args.cpus)) as pool:
        results = pool.judge_many(submissions)
    header = f"{'problem':<10} {'solution':<24} {'lang':<6} {'expect':<6} {'verdict':<7} {'passed':>7} {'ms/test':>8}"
    print(header)
    print("-" * len(header))
    mismatches = 0
    for entry, (problem, _, language), result in zip(entries, submissions, results):
        ms = 1000 * sum(t.time_s for t in result.tests) / max(1, len(result.tests))
        ok = result.verdict.value == entry["expect"]
        mismatches += not ok
        print(f"{problem.id:<10} {Path(entry['solution']).name:<24} {language:<6} {entry['expect']:<6} "
              f"{result.verdict.value:<7} {result.passed:>3}/{result.total:<3} {ms:>8.1f}{'' if ok else '  <-- unexpected'}")
    print(f"\n{len(entries) - mismatches}/{len(entries)} verdicts as expected "
          f"(samples in {SAMPLES})")
    return 0 if mismatches == 0 else 1


COMMANDS = {"run": _run, "batch": _batch, "serve": _serve, "audit": _audit, "demo": _demo}


def _pool(args: argparse.Namespace, workers: int) -> JudgePool:
    return JudgePool(workers=workers, cpp_std=args.cpp_std, time_limit_scale=args.time_limit_scale,
                     cpus=_checked_cpus(args.cpus))


def _cpu_choice(text: str) -> str:
    try:
        check_cpu_choice(text)  # argparse names the option
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _checked_cpus(cpus: str) -> str:
    """A well-formed --cpus naming CPUs this process may not use is refused here, before any work."""
    try:
        worker_cpus(cpus, 1, key="--cpus")
    except ValueError as e:
        raise InputError(str(e)) from None
    return cpus


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _one_problem(path: str) -> Problem:
    problems = _load(path)
    if len(problems) != 1:
        raise InputError(f"{path}: holds {len(problems)} problems; --problem takes exactly one")
    return problems[0]


def _problems_by_id(path: str) -> dict[str, Problem]:
    by_id: dict[str, Problem] = {}
    for problem in _load(path):
        if problem.id in by_id:
            raise InputError(f"{path}: problem id {problem.id!r} appears twice; ids must be unique")
        by_id[problem.id] = problem
    return by_id


def _load(path: str) -> list[Problem]:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    return load_problems(path)


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise InputError(f"{option} {path}: no such file") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise InputError(f"{option} {path}: not a readable text file ({e})") from None


def _language(given: str | None, path: Path) -> str:
    if given is None:
        language = language_of(path)
        if language is None:
            raise InputError(f"{path}: cannot tell the language from the suffix {path.suffix!r}; pass --language python|cpp")
        return language
    try:
        normalize_language(given)
    except ValueError as e:
        raise InputError(f"--language: {e}") from None
    return given  # as given: a name such as c++20 fixes the C++ standard (judge/runner.py)


def _submission_rows(path: Path, problems: dict[str, Problem]) -> list[dict[str, Any]]:
    if not path.exists():
        raise InputError(f"{path}: no such submissions file")
    rows = []
    with path.open() as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{where}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise InputError(f"{where}: a submission must be a JSON object")
            for key in ("id", "problem_id", "code"):
                if key not in row:
                    raise InputError(f"{where}: missing key {key!r} (rows need id, problem_id, code, language)")
            if not isinstance(row["code"], str):
                raise InputError(f"{where}: key 'code' must be a string")
            if row["problem_id"] not in problems:
                raise InputError(f"{where}: problem_id {row['problem_id']!r} is not in the problems file")
            language = row.get("language", "python")  # as given: c++20 and the like fix the C++ standard
            try:
                normalize_language(language)
            except ValueError as e:
                raise InputError(f"{where}: key 'language': {e}") from None
            rows.append({"id": row["id"], "problem_id": row["problem_id"], "code": row["code"], "language": language})
    return rows


if __name__ == "__main__":
    sys.exit(main())

"""Kattis / ICPC problem package folders (the problemtools format, legacy and 2023 layouts).

  data/sample/*.in + *.ans, data/secret/**/*.in + *.ans   the tests, samples first, each group sorted by path
  problem.yaml        name, source, limits.memory (MB), validation, validator_flags, and the time limit rule:
                      limits.time_limit (s, fixed), limits.time_multipliers {ac_to_time_limit, time_limit_to_tle}
                      and limits.time_resolution (2023 format), or limits.time_multiplier / time_safety_margin (legacy)
  .timelimit          the time limit in seconds, when a tool (BAPCtools, DOMjudge) fixed one
  output_validators/<name>/ (or output_validator/)       a custom checker: one .py or .cpp source; headers it
                      #includes from its own folder (validate.h) are inlined, so it compiles from one file

Interactive problems (legacy `validation: custom interactive`, 2023 format `type: interactive` or a type
list holding it) become problems with an `interactor`: the output validator, in the Kattis convention
(judge/interactive.py). Their samples' .interaction files (logs for the statement) are not tests and are
ignored; the .in/.ans pairs are the tests, as for any problem. Multi-pass problems are refused.

The default validator compares tokens case-insensitively unless validator_flags says case_sensitive, and
compares numbers with a tolerance only when a float_*tolerance flag gives one.

Time limits, as problemtools sets them: a fixed limit (.timelimit first, then limits.time_limit) is used as
it is. Without one, Kattis runs the package's accepted submissions and sets the limit to the slowest one's
time (its slowest test) times ac_to_time_limit, rounded up to time_resolution and at least one resolution
step (legacy time_multiplier is ac_to_time_limit, with defaults 5 legacy and 2 in the 2023 format;
time_safety_margin is time_limit_to_tle, which only sorts out the submissions labelled TLE). Loading does
not run submissions, so such a problem gets DEFAULT_TIME_LIMIT_S and its metadata["time_limit_rule"]["source"]
is "default"; whoever has judged the accepted submissions applies the rule with `calibrated_time_limit`.
metadata["time_limit_rule"] holds source (".timelimit", "problem.yaml", "default", then "accepted
submissions"), ac_to_time_limit, time_limit_to_tle and time_resolution.
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import yaml

from judge.problem import (
    DEFAULT_MEMORY_LIMIT_MB,
    DEFAULT_TIME_LIMIT_S,
    Checker,
    Comparison,
    Interactor,
    Problem,
    ProblemError,
    TestCase,
)

CHECKER_LANGUAGES = {".py": "python", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp"}
_LOCAL_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"[^\n]*$', re.MULTILINE)
_PRAGMA_ONCE = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+once[ \t]*$", re.MULTILINE)
_STATEMENTS = ("problem.en.md", "problem.md", "problem.en.tex", "problem.tex")


def _config(folder: Path) -> dict[str, Any]:
    path = folder / "problem.yaml"
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ProblemError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(config, dict):
        raise ProblemError(f"{path}: expected a mapping of settings, got {type(config).__name__}")
    return config


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ProblemError(f"{path}: not UTF-8 text ({e})") from None


def _tests(group: Path) -> list[TestCase]:
    tests = []
    for input_path in sorted(group.rglob("*.in")):
        answer_path = input_path.with_suffix(".ans")
        if not answer_path.is_file():
            raise ProblemError(f"{input_path}: no answer file {answer_path.name} beside it")
        tests.append(TestCase(_read(input_path), _read(answer_path)))
    return tests


def _number(config: dict[str, Any], path: Path, *keys: str) -> float | None:
    value: Any = config
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ProblemError(f"{path}: {'.'.join(keys)} must be a positive number, got {value!r}")
    return float(value)


def _time_limit_rule(config: dict[str, Any], path: Path) -> dict[str, float]:
    """problemtools' multipliers; legacy names (limits.time_multiplier, time_safety_margin) and defaults when the
    package is not in the 2023 format (no problem_format_version, or "legacy")."""
    legacy = str(config.get("problem_format_version") or "legacy").startswith("legacy")
    ac_to_time_limit, time_limit_to_tle = (5.0, 2.0) if legacy else (2.0, 1.5)
    return {
        "ac_to_time_limit": (_number(config, path, "limits", "time_multipliers", "ac_to_time_limit")
                             or _number(config, path, "limits", "time_multiplier") or ac_to_time_limit),
        "time_limit_to_tle": (_number(config, path, "limits", "time_multipliers", "time_limit_to_tle")
                              or _number(config, path, "limits", "time_safety_margin") or time_limit_to_tle),
        "time_resolution": _number(config, path, "limits", "time_resolution") or 1.0,
    }


def _time_limit_s(folder: Path, config: dict[str, Any]) -> tuple[float, str]:
    """The time limit and where it came from."""
    fixed = folder / ".timelimit"
    if fixed.is_file():
        try:
            seconds = float(fixed.read_text().strip())
        except ValueError:
            raise ProblemError(f"{fixed}: expected a number of seconds, got {fixed.read_text().strip()!r}") from None
        if seconds > 0:
            return seconds, ".timelimit"
        raise ProblemError(f"{fixed}: the time limit must be positive, got {seconds}")
    seconds = _number(config, folder / "problem.yaml", "limits", "time_limit")
    return (seconds, "problem.yaml") if seconds else (DEFAULT_TIME_LIMIT_S, "default")


def calibrated_time_limit(problem: Problem, slowest_accepted_s: float) -> Problem:
    """`problem` with the limit Kattis would set from its accepted submissions, the slowest of which took
    `slowest_accepted_s` on its slowest test; a limit the package fixed is kept, as problemtools keeps it."""
    rule = problem.metadata.get("time_limit_rule")
    if not isinstance(rule, dict) or "ac_to_time_limit" not in rule:
        raise ProblemError(f"problem {problem.id!r}: no Kattis time limit rule in metadata['time_limit_rule']; "
                           "only problems loaded from a Kattis package can be calibrated")
    if rule["source"] != "default":
        return problem
    resolution = rule["time_resolution"]
    # Rounded before ceil: 0.7 * 2 / 0.1 is 14.000000000000002 in floating point, which is 14 steps.
    steps = max(1, math.ceil(round(slowest_accepted_s * rule["ac_to_time_limit"] / resolution, 9)))
    metadata = {**problem.metadata, "time_limit_rule": {**rule, "source": "accepted submissions"}}
    return dataclasses.replace(problem, time_limit_s=round(steps * resolution, 9), metadata=metadata)


def _comparison(flags: str, path: Path) -> Comparison:
    words = flags.split()
    tolerances = {"float_tolerance": ("abs_tol", "rel_tol"), "float_absolute_tolerance": ("abs_tol",),
                  "float_relative_tolerance": ("rel_tol",)}
    settings: dict[str, float] = {"abs_tol": 0.0, "rel_tol": 0.0}
    for index, word in enumerate(words):
        if word in tolerances:
            try:
                value = float(words[index + 1])
            except (IndexError, ValueError):
                raise ProblemError(f"{path}: validator_flags: {word} needs a number after it") from None
            settings.update({name: value for name in tolerances[word]})
    return Comparison(case_insensitive="case_sensitive" not in words, **settings)


def _inline_local_headers(source: str, folder: Path, seen: set[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        header = folder / name
        if not header.is_file():
            return match.group(0)
        if name in seen:
            return ""
        seen.add(name)
        # Each header is inlined once, so its "#pragma once" is moot, and gcc warns about one in a main file.
        text = _PRAGMA_ONCE.sub("", _read(header))
        return _inline_local_headers(text, folder, seen)

    return _LOCAL_INCLUDE.sub(replace, source)


def _problem_types(config: dict[str, Any], path: Path) -> list[str]:
    """The 2023 format's `type`: one name, names separated by spaces, or a list of names."""
    value = config.get("type") or []
    names = value.split() if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ProblemError(f"{path}: type must be a string or a list of strings, got {value!r}")
    return names


def _checker(folder: Path, interactive: bool) -> Checker:
    roots = [folder / "output_validators", folder / "output_validator"]
    root = next((r for r in roots if r.is_dir()), None)
    if root is None:
        if interactive:
            raise ProblemError(f"{folder}: problem.yaml says the problem is interactive but there is no "
                               "output_validators/ (or output_validator/) holding its interactor")
        raise ProblemError(f"{folder}: problem.yaml asks for custom validation but there is no output_validators/")
    if any(p.is_file() and p.suffix in CHECKER_LANGUAGES for p in root.iterdir()):
        program = root  # a single-file validator, or the 2023 layout: its sources lie directly in the folder
    else:
        programs = sorted(p for p in root.iterdir() if p.is_dir())
        if len(programs) != 1:
            raise ProblemError(f"{root}: expected one output validator folder, found {[p.name for p in programs]}")
        program = programs[0]
    sources = sorted(p for p in program.iterdir() if p.is_file() and p.suffix in CHECKER_LANGUAGES)
    if len(sources) != 1:
        raise ProblemError(f"{program}: expected exactly one .py or .cpp validator source, found "
                           f"{[p.name for p in sources]}")
    source_path = sources[0]
    language = CHECKER_LANGUAGES[source_path.suffix]
    source = _read(source_path)
    if language == "cpp":
        source = _inline_local_headers(source, source_path.parent, set())
    return Checker(language, source)


def _statement(folder: Path) -> str | None:
    for statement_folder in (folder / "problem_statement", folder / "statement"):
        for name in _STATEMENTS:
            if (statement_folder / name).is_file():
                return _read(statement_folder / name)
    return None


def load_package(folder: str | Path) -> Problem:
    """The problem in a Kattis/ICPC package folder."""
    folder = Path(folder)
    if not (folder / "data").is_dir():
        raise ProblemError(f"{folder}: not a problem package: it has no data/ folder "
                           "(expected data/sample and data/secret holding .in/.ans pairs)")
    config = _config(folder)
    yaml_path = folder / "problem.yaml"
    validation = str(config.get("validation") or "default")
    types = _problem_types(config, yaml_path)
    if "multi-pass" in types:
        raise ProblemError(f"{yaml_path}: multi-pass problems (type {config['type']!r}) are not supported by the judge")
    interactive = "interactive" in validation.split() or "interactive" in types
    custom = "custom" in validation.split() or (folder / "output_validator").is_dir()
    validator = _checker(folder, interactive) if custom or interactive else None
    samples = _tests(folder / "data" / "sample")
    tests = samples + _tests(folder / "data" / "secret")
    name = config.get("name")
    memory_mb = _number(config, yaml_path, "limits", "memory")
    time_limit_s, time_limit_source = _time_limit_s(folder, config)
    fields = dict(
        id=folder.resolve().name,
        kind="stdio",
        tests=tests,
        time_limit_s=time_limit_s,
        memory_limit_mb=int(memory_mb) if memory_mb else DEFAULT_MEMORY_LIMIT_MB,
        checker=None if interactive else validator,
        interactor=Interactor(validator.language, validator.source, "kattis") if interactive else None,
        comparison=_comparison(str(config.get("validator_flags") or ""), yaml_path),
        metadata={
            "platform": "kattis",
            "source": config.get("source"),
            "difficulty": config.get("difficulty"),
            "contest_date": None,
            "question_title": name.get("en") if isinstance(name, dict) else name,
            "question_content": _statement(folder),
            "starter_code": "",
            "public_tests": len(samples),
            "time_limit_rule": {"source": time_limit_source, **_time_limit_rule(config, yaml_path)},
        },
    )
    try:
        return Problem(**fields)
    except ProblemError as e:
        raise ProblemError(f"{folder}: {e}") from None

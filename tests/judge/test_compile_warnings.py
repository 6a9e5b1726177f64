"""Compiler warnings about a submission (SyntaxWarning, invalid escapes) are not printed on the judging
process's terminal: the zygote inherits the caller's stderr, which capfd captures here."""
from judge.pool import JudgePool
from judge.verdict import Verdict
from judge_test_helpers import stdio_problem

# Right answers, written the way models often write them: each line makes the compiler warn.
WARNS_WHEN_COMPILED = (
    "a, b = map(int, input().split())\n"
    "same = a is 1\n"
    "pattern = '\\d+'\n"
    "flag = 1if a else 0\n"
    "print(a + b)\n"
)


def test_compiling_a_submission_prints_no_warning(capfd):
    with JudgePool(1) as pool:  # started inside the test, so its zygote writes to the captured stderr
        result = pool.judge(stdio_problem(), WARNS_WHEN_COMPILED)
    assert result.verdict is Verdict.AC, result.to_dict()
    err = capfd.readouterr().err
    assert "Warning" not in err and "solution.py" not in err, err


def test_a_syntax_error_is_still_a_compile_error_with_its_message():
    with JudgePool(1) as pool:
        result = pool.judge(stdio_problem(), "print(1if)\n")
    assert result.verdict is Verdict.CE and "SyntaxError" in result.detail

"""C++17 submissions: compiled once per submission, run under the same sandbox."""
import pytest

from judge.verdict import Verdict
from judge_test_helpers import SUM_TESTS, stdio_problem

ACCEPTED = ("#include <cstdio>\nint main() { long long a, b; if (std::scanf(\"%lld %lld\", &a, &b) != 2) return 1;\n"
            "std::printf(\"%lld\\n\", a + b); }\n")


@pytest.mark.parametrize("code, verdict", [
    (ACCEPTED, Verdict.AC),
    ("#include <cstdio>\nint main() { int a, b; std::scanf(\"%d %d\", &a, &b); std::printf(\"%d\\n\", a + b); }\n",
     Verdict.WA),  # int overflow on the third test
    ("#include <cstdlib>\nint main() { std::abort(); }\n", Verdict.RE),
    ("#include <vector>\n#include <cstdio>\nint main() { std::vector<long long> v(1LL << 33); std::printf(\"%d\", (int)v[5]); }\n",
     Verdict.MLE),
    ("int main() { volatile unsigned long x = 0; for (;;) x++; }\n", Verdict.TLE),
])
def test_cpp_verdicts(judge_pool, code, verdict):
    result = judge_pool.judge(stdio_problem(SUM_TESTS, time_limit_s=1.0), code, "cpp")
    assert result.verdict is verdict, result.to_dict()


def test_compile_error_carries_the_diagnostics(judge_pool):
    result = judge_pool.judge(stdio_problem(SUM_TESTS), "int main() { return undefined_thing; }\n", "cpp")
    assert result.verdict is Verdict.CE and "undefined_thing" in result.detail and result.tests == []


def test_cpp_threads_work_but_process_creation_does_not(judge_pool):
    threads = ("#include <cstdio>\n#include <thread>\nint main() { long long a, b, s = 0; if (std::scanf(\"%lld %lld\", &a, &b) != 2) return 1;\n"
               "std::thread t([&] { s = a + b; }); t.join(); std::printf(\"%lld\\n\", s); }\n")
    assert judge_pool.judge(stdio_problem(SUM_TESTS), threads, "cpp").verdict is Verdict.AC
    fork = ("#include <unistd.h>\n#include <cstdio>\nint main() { long long a, b; if (scanf(\"%lld %lld\", &a, &b) != 2) return 1;\n"
            "if (fork() < 0) return 7; printf(\"%lld\\n\", a + b); }\n")
    assert judge_pool.judge(stdio_problem(SUM_TESTS), fork, "cpp").verdict is Verdict.RE
    shell = ("#include <cstdlib>\n#include <cstdio>\nint main() { long long a, b; if (scanf(\"%lld %lld\", &a, &b) != 2) return 1;\n"
             "if (std::system(\"true\") != 0) return 7; printf(\"%lld\\n\", a + b); }\n")
    assert judge_pool.judge(stdio_problem(SUM_TESTS), shell, "cpp").verdict is Verdict.RE
    # The filter lets the zygote's child exec the binary once; the binary itself cannot exec (echo would
    # print the right answer to the first test).
    reexec = "#include <unistd.h>\nint main() { execl(\"/bin/echo\", \"echo\", \"3\", (char*)0); return 7; }\n"
    result = judge_pool.judge(stdio_problem(SUM_TESTS), reexec, "cpp")
    assert result.verdict is Verdict.RE and result.passed == 0

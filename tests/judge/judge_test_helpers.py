"""Problem builders and programs shared by the judge tests."""
from __future__ import annotations

from judge.problem import Problem, TestCase

SUM_TESTS = [("1 2\n", "3\n"), ("10 -4\n", "6\n"), ("1000000000000 1\n", "1000000000001\n")]


def stdio_problem(pairs=SUM_TESTS, time_limit_s: float = 2.0, memory_limit_mb: int = 256, **extra) -> Problem:
    return Problem(id="p", kind="stdio", tests=[TestCase(i, o) for i, o in pairs], time_limit_s=time_limit_s,
                   memory_limit_mb=memory_limit_mb, **extra)


def function_problem(fn_name: str, pairs, **extra) -> Problem:
    return Problem(id="f", kind="function", tests=[TestCase(i, o) for i, o in pairs], fn_name=fn_name,
                   time_limit_s=2.0, memory_limit_mb=256, **extra)


# What a problem's own program could do beyond its folder: read root's files, write in the judge's scratch
# folder (its folder's parent) or beside its own binary, be root or nobody (the submissions' user), or see a
# network interface besides loopback. 1 (SE) when any; else the guessing game.
ESCAPES_CPP = r"""
#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
static bool writable(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    std::fclose(f);
    unlink(path.c_str());
    return true;
}
static bool escaped(const char* self) {
    if (getuid() == 0 || getuid() == 65534 || getgid() == 0) return true;
    if (std::fopen("/etc/shadow", "r") != nullptr) return true;
    std::string binary(self);
    if (writable("../escaped") || writable(binary.substr(0, binary.rfind('/')) + "/escaped")) return true;
    std::ifstream interfaces("/proc/net/dev");
    std::string line;
    while (std::getline(interfaces, line))
        if (line.find(':') != std::string::npos && line.find("lo:") == std::string::npos) return true;
    return false;
}
"""

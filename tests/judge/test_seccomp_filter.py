"""The seccomp filter is compiled as a binary tree of syscall numbers (judge/sandbox.py, cheaper for the kernel
to load in every test child); it must decide exactly as libseccomp's plain chain of the same rules. Both are
run here by a small BPF interpreter over every syscall number and the argument values the rules look at."""
import platform
import struct

import pytest

from judge import sandbox

pyseccomp = pytest.importorskip("pyseccomp")
pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="seccomp_data below is x86-64's")

_AUDIT_ARCH_X86_64 = 0xC000003E


def _run(program: bytes, nr: int, arch: int, args: tuple[int, ...]) -> int:
    data = struct.pack("=IIQ6Q", nr, arch, 0, *args)
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = struct.unpack_from("=HBBI", program, 8 * pc)
        pc += 1
        if code == 0x20:  # ld [k]
            accumulator = struct.unpack_from("=I", data, k)[0]
        elif code == 0x54:  # and #k
            accumulator &= k
        elif code == 0x06:  # ret #k
            return k
        elif code == 0x05:  # ja
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset #k
            taken = {0x15: accumulator == k, 0x25: accumulator > k, 0x35: accumulator >= k,
                     0x45: bool(accumulator & k)}[code]
            pc += jt if taken else jf
        else:
            raise AssertionError(f"BPF instruction {code:#x} not interpreted here")


def _compile(exec_address, tree: bool) -> bytes:
    original = pyseccomp.SyscallFilter

    class Chain(original):
        def set_attr(self, attr, value):
            if attr != pyseccomp.Attr.CTL_OPTIMIZE:
                super().set_attr(attr, value)

    pyseccomp.SyscallFilter = original if tree else Chain
    try:
        return sandbox._build_filter(exec_address)
    finally:
        pyseccomp.SyscallFilter = original


@pytest.mark.parametrize("exec_address", [None, 0x7F3A_1C2B3D4E], ids=["python", "native"])
def test_the_tree_decides_as_the_chain(exec_address):
    tree, chain = _compile(exec_address, tree=True), _compile(exec_address, tree=False)
    assert tree != chain, "no binary tree: libseccomp ignored CTL_OPTIMIZE"
    address = exec_address or 0x1234
    values = [0, 1, 2, 0x10000, 0x10011, sandbox._PID_PLACEHOLDER, sandbox._PID_PLACEHOLDER + 1, address,
              address ^ 1, address + (1 << 32), (1 << 64) - 1]
    decisions = 0
    for arch in (_AUDIT_ARCH_X86_64, 0x40000003):
        for nr in [*range(0, 480), 0x40000000, 0x40000001, 0x7FFFFFFF, 0xFFFFFFFF]:
            for value in values:
                args = (value, value, 0, 0, 0, 0)
                assert _run(tree, nr, arch, args) == _run(chain, nr, arch, args), (arch, nr, hex(value))
                decisions += 1
    assert decisions > 10000
    allow, zeros = 0x7FFF0000, (0,) * 6
    assert _run(tree, 0, _AUDIT_ARCH_X86_64, zeros) == allow  # read
    assert _run(tree, 57, _AUDIT_ARCH_X86_64, zeros) != allow  # fork
    assert _run(tree, 62, _AUDIT_ARCH_X86_64, (sandbox._PID_PLACEHOLDER, 9, 0, 0, 0, 0)) == allow  # kill(itself)
    assert _run(tree, 62, _AUDIT_ARCH_X86_64, (1, 9, 0, 0, 0, 0)) != allow  # kill(1)

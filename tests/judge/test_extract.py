"""extract_code / has_complete_program on responses shaped like real model outputs."""
import pytest

from judge.extract import extract_code, has_complete_program

F = "```"  # keeps the fences readable inside these strings

DRAFT_THEN_FINAL = f"""Let me think about the constraints first. A brute force would be:

{F}python
def solve():
    print("draft")
{F}

That is too slow, so here is the final solution:

{F}python
import sys

def main():
    data = sys.stdin.read().split()
    print(sum(map(int, data)))

main()
{F}

For the sample:
{F}text
6
{F}
"""


def test_the_last_code_block_wins_and_example_output_blocks_are_skipped():
    code, language = extract_code(DRAFT_THEN_FINAL)
    assert language == "python"
    assert code.startswith("import sys\n") and code.endswith("main()\n")
    assert "draft" not in code


def test_language_tags_map_to_judge_languages():
    for tag, language in [("python", "python"), ("py", "python"), ("Python3", "python"), ("cpp", "cpp"),
                          ("c++", "cpp"), ("cc", "cpp"), ("CPP", "cpp")]:
        assert extract_code(f"{F}{tag}\nx\n{F}\n") == ("x\n", language), tag


def test_requested_language_prefers_its_tag_then_untagged():
    response = f"{F}cpp\nint main() {{}}\n{F}\n\n{F}python\nprint(1)\n{F}\n\n{F}\nprint(2)\n{F}\n"
    assert extract_code(response, "cpp") == ("int main() {}\n", "cpp")
    assert extract_code(response, "python") == ("print(1)\n", "python")
    assert extract_code(response) == ("print(1)\n", "python")  # no request: the last tagged program
    untagged_only = f"{F}\nprint(3)\n{F}\n"
    assert extract_code(untagged_only, "python") == ("print(3)\n", "python")
    assert extract_code(f"{F}java\nclass A {{}}\n{F}\n", "python") is None


def test_sample_io_in_an_untagged_block_after_the_program_is_not_the_program():
    response = f"{F}python\nprint(sum(map(int, input().split())))\n{F}\n\nExample:\n{F}\n1 2\n{F}\nprints 3."
    assert extract_code(response) == ("print(sum(map(int, input().split())))\n", "python")
    assert extract_code(response, "python") == ("print(sum(map(int, input().split())))\n", "python")


def test_untagged_block_language_is_guessed_without_a_request():
    assert extract_code(f"{F}\n#include <cstdio>\nint main() {{ puts(\"1\"); }}\n{F}\n")[1] == "cpp"
    assert extract_code(f"{F}\nprint(input())\n{F}\n")[1] == "python"


def test_tilde_fences_and_longer_fences():
    assert extract_code("~~~python\nprint(1)\n~~~\n") == ("print(1)\n", "python")
    # A four-backtick fence holds a line of three backticks as code.
    response = "````python\ns = '''\n```\n'''\nprint(s)\n````\n"
    assert extract_code(response) == ("s = '''\n```\n'''\nprint(s)\n", "python")
    # A tilde block is not closed by backticks.
    assert extract_code("~~~python\nprint(1)\n```\n") is None


def test_indented_fence_in_a_list_item_is_dedented():
    response = f"1. Read input\n2. Solve:\n\n   {F}python\n   n = int(input())\n   print(n)\n   {F}\n"
    assert extract_code(response) == ("n = int(input())\nprint(n)\n", "python")


def test_crlf_response():
    assert extract_code(f"{F}python\r\nprint(1)\r\n{F}\r\n") == ("print(1)\n", "python")


@pytest.mark.parametrize(
    "response",
    [
        "",
        "I am not sure how to solve this.",
        "Use `print(1)` inline.",
        f"{F}python print(1){F}",  # an inline span, not a fence
        f"{F}python\n\n{F}\n",  # an empty block holds no program
        f"{F}text\n42\n{F}\n",  # only example output
    ],
)
def test_no_program(response):
    assert extract_code(response) is None
    assert not has_complete_program(response)


def test_cut_off_final_block_means_no_program():
    cut_off = f"Here is a first try:\n{F}python\nprint(1)\n{F}\nBetter:\n{F}python\nimport sys\nfor line in sys.std"
    assert extract_code(cut_off) is None
    assert not has_complete_program(cut_off)
    assert has_complete_program(cut_off.rsplit("Better:", 1)[0])


def test_code_drafted_while_thinking_does_not_count():
    finished = f"<think>\nmaybe\n{F}python\nprint('draft')\n{F}\n</think>\nFinal:\n{F}python\nprint('final')\n{F}\n"
    assert extract_code(finished) == ("print('final')\n", "python")
    cut_off_while_thinking = f"<think>\nmaybe\n{F}python\nprint('draft')\n{F}\nhmm, what if"
    assert extract_code(cut_off_while_thinking) is None
    thought_but_no_answer_code = f"<think>\n{F}python\nprint('draft')\n{F}\n</think>\nThe answer is 4."
    assert extract_code(thought_but_no_answer_code) is None


def test_cpp_response_with_explanation_after_the_code():
    response = f"""The idea is a prefix sum.

{F}cpp
#include <bits/stdc++.h>
using namespace std;
int main() {{
    long long n, s = 0; cin >> n;
    for (long long i = 0, x; i < n; ++i) {{ cin >> x; s += x; }}
    cout << s << "\\n";
}}
{F}

This runs in O(n) time and O(1) memory.
"""
    code, language = extract_code(response)
    assert language == "cpp"
    assert code.startswith("#include <bits/stdc++.h>\n") and code.rstrip().endswith("}")
    assert has_complete_program(response)

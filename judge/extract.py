"""Finding the program in a model's response: the last complete fenced code block.

Fences follow CommonMark: a line of three or more backticks or tildes opens a block (an info string may
follow: its first word is the language tag); a line of the same character, at least as long, closes it. A
block still open when the response ends means the response was cut off, so it holds no complete program.
Reasoning models draft code while thinking: only the text after the last `</think>` counts, and a response
cut off inside its thinking has no program.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Tags a model writes for the languages the judge runs, mapped to the judge's language names.
LANGUAGE_TAGS = {
    "python": "python",
    "py": "python",
    "python3": "python",
    "cpp": "cpp",
    "c++": "cpp",
    "cc": "cpp",
}
JUDGE_LANGUAGES = frozenset(LANGUAGE_TAGS.values())

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class _Block:
    tag: str  # lower-cased first word of the info string, "" when untagged
    code: str


def _opening_fence(line: str) -> tuple[str, int, str] | None:
    """(fence character, fence length, info string) when `line` opens a block."""
    stripped = line.lstrip()
    char = stripped[:1]
    if char not in ("`", "~"):
        return None
    length = len(stripped) - len(stripped.lstrip(char))
    if length < 3:
        return None
    info = stripped[length:].strip()
    if char == "`" and "`" in info:  # CommonMark: that is inline code, not a fence
        return None
    return char, length, info


def _closes(line: str, char: str, length: int) -> bool:
    stripped = line.strip()
    return len(stripped) >= length and stripped == char * len(stripped)


def _dedent(line: str, indent: int) -> str:
    # A fence indented inside a list item indents its code by as much; remove up to that many spaces.
    removable = len(line) - len(line.lstrip(" "))
    return line[min(indent, removable):]


def _blocks(text: str) -> tuple[list[_Block], bool]:
    """The complete blocks in order, and whether the text ends inside an open block."""
    blocks: list[_Block] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        fence = _opening_fence(lines[i])
        if fence is None:
            i += 1
            continue
        char, length, info = fence
        indent = len(lines[i]) - len(lines[i].lstrip(" "))
        body_start = i + 1
        end = next((j for j in range(body_start, len(lines)) if _closes(lines[j], char, length)), None)
        if end is None:
            return blocks, True
        body = [_dedent(line, indent) for line in lines[body_start:end]]
        tag = info.split()[0].lower() if info else ""
        blocks.append(_Block(tag, "\n".join(body) + "\n"))
        i = end + 1
    return blocks, False


def _answer_part(response: str) -> str | None:
    """The text after the reasoning, or None when the response was cut off while reasoning."""
    close = response.rfind(_THINK_CLOSE)
    if close >= 0:
        return response[close + len(_THINK_CLOSE):]
    if _THINK_OPEN in response:
        return None
    return response


def _last(blocks: list[_Block], wanted: Callable[[_Block], bool]) -> _Block | None:
    return next((b for b in reversed(blocks) if wanted(b)), None)


def _guess_language(code: str) -> str:
    return "cpp" if "#include" in code else "python"


def extract_code(response: str, language: str | None = None) -> tuple[str, str] | None:
    """(code, language) of the last complete fenced block, or None when the response holds none.

    The last block tagged for `language` ("python" or "cpp"; without it, for any language the judge runs)
    wins, else the last untagged block: models put sample input and output in untagged or text-tagged blocks
    after their program. An untagged block's language is `language`, or a guess from its content.
    """
    answer = _answer_part(response)
    if answer is None:
        return None
    blocks, cut_off = _blocks(answer)
    if cut_off:
        return None
    with_code = [b for b in blocks if b.code.strip()]
    wanted = {language} if language is not None else JUDGE_LANGUAGES
    chosen = _last(with_code, lambda b: LANGUAGE_TAGS.get(b.tag) in wanted) or _last(with_code, lambda b: not b.tag)
    if chosen is None:
        return None
    detected = LANGUAGE_TAGS.get(chosen.tag) or language or _guess_language(chosen.code)
    return chosen.code, detected


def has_complete_program(response: str) -> bool:
    """Whether the response holds a finished program (False for one cut off before its code ended)."""
    return extract_code(response) is not None

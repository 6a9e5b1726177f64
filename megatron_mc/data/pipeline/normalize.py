"""Statement normalization: HTML and LaTeX remnants turned into plain text, and the check that a
stdin/stdout statement says what its input and its output are."""
from __future__ import annotations

import html
import re

_LATEX_SYMBOLS = {
    r"\le": "<=", r"\leq": "<=", r"\leqslant": "<=", r"\ge": ">=", r"\geq": ">=", r"\geqslant": ">=",
    r"\ne": "!=", r"\neq": "!=", r"\lt": "<", r"\gt": ">", r"\times": "*", r"\cdot": "*", r"\cdots": "...",
    r"\ldots": "...", r"\dots": "...", r"\infty": "infinity", r"\pm": "+-", r"\to": "->", r"\rightarrow": "->",
    r"\in": "in", r"\sum": "sum", r"\max": "max", r"\min": "min", r"\bmod": "mod", r"\mod": "mod",
    r"\lfloor": "floor(", r"\rfloor": ")", r"\lceil": "ceil(", r"\rceil": ")", r"\left": "", r"\right": "",
    r"\quad": " ", r"\qquad": " ", r"\,": " ", r"\;": " ", r"\!": "", r"\%": "%", r"\$": "$", r"\&": "&",
    r"\_": "_", r"\{": "{", r"\}": "}", r"\\": "\n",
}
_SYMBOL = re.compile("|".join(re.escape(k) + (r"(?![A-Za-z])" if k[-1].isalpha() else "")
                              for k in sorted(_LATEX_SYMBOLS, key=len, reverse=True)))
_SECTION = re.compile(r"\\(?:(?:sub)*section\*?|problemname)\{([^{}]*)\}")
_TEXT_COMMAND = re.compile(r"\\(?:texttt|textbf|textit|text|mathrm|mathit|mathbf|mathtt|emph|operatorname|"
                           r"underline|mbox|t|bf|it)\s*\{([^{}]*)\}")
_SCRIPT = re.compile(r"([\^_])\{([^{}]*)\}")
_MATH_DELIMITERS = re.compile(r"\$\$\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_ENVIRONMENT = re.compile(r"\\(?:begin|end)\{[^{}]*\}")
_BLOCK_TAG = re.compile(r"<\s*(?:br|/p|p|/div|div|/li|/h\d|h\d|/pre|pre|/tr)\b[^>]*>", re.IGNORECASE)
_LIST_ITEM = re.compile(r"<\s*li\b[^>]*>", re.IGNORECASE)
_SUP = re.compile(r"<\s*sup\s*>(.*?)<\s*/\s*sup\s*>", re.IGNORECASE | re.DOTALL)
_SUB = re.compile(r"<\s*sub\s*>(.*?)<\s*/\s*sub\s*>", re.IGNORECASE | re.DOTALL)
_DROPPED = re.compile(r"<\s*(script|style)\b.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")

# A heading line ("Input", "## Output:", "-----Input-----", "Input Format", "Input Specification") ...
_HEADING = r"^[\s#*\-=]*{word}(?:\s+(?:format|specification|description))?[\s:*\-=]*$"
# ... or a sentence naming the stream ("Read from standard input", "print to stdout").
_STREAM = {"input": r"standard input|\bstdin\b", "output": r"standard output|\bstdout\b"}


def clean_statement(text: str) -> str:
    """Plain text: HTML tags and entities and LaTeX markup resolved, blank runs collapsed."""
    text = _DROPPED.sub("", text)
    text = _SUP.sub(r"^\1", text)
    text = _SUB.sub(r"_\1", text)
    text = _BLOCK_TAG.sub("\n", text)
    text = _LIST_ITEM.sub("\n- ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text).replace("\xa0", " ")
    text = _SECTION.sub(lambda m: f"\n{m.group(1)}\n", text)
    text = _ENVIRONMENT.sub("", text)
    for _ in range(3):  # nested \texttt{\textbf{x}}
        text = _TEXT_COMMAND.sub(r"\1", text)
    text = _SCRIPT.sub(r"\1\2", text)
    text = _SYMBOL.sub(lambda m: _LATEX_SYMBOLS[m.group(0)], text)
    text = _MATH_DELIMITERS.sub("", text)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def has_section(text: str, which: str) -> bool:
    """Whether `text` says what its `which` ("input" or "output") is: a heading, or the stream named."""
    heading = re.compile(_HEADING.format(word=which), re.IGNORECASE | re.MULTILINE)
    return bool(heading.search(text) or re.search(_STREAM[which], text, re.IGNORECASE))


def missing_sections(text: str) -> list[str]:
    return [which for which in ("input", "output") if not has_section(text, which)]

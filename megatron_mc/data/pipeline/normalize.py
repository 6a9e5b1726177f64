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
# Only real HTML is markup: `<` right before a known tag name (optionally `/`-prefixed), then a proper tag end.
# Anything else between < and > ("a<b and b>c", "vector<int>", "i < p <= n ... a_i > a_p") is statement text.
_HTML_TAGS = ("p|br|div|span|b|i|u|s|em|strong|code|pre|sub|sup|ul|ol|li|dl|dt|dd|h[1-6]|table|thead|tbody|tfoot|"
              "tr|td|th|img|a|var|tt|section|blockquote|hr|center|font|small|big|strike|del|ins|kbd|samp|cite|"
              "q|abbr|mark|label|figure|figcaption|caption|col|colgroup|nobr|wbr|article|header|footer|main|nav")
# attributes need a value: "<b and b>" (in "a<b and b>c") is text, not a bold tag with attributes "and" and "b"
_ATTRS = r"""(?:\s+[A-Za-z_:][-\w:.]*\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>=`]+))*\s*/?"""
_OPEN = rf"<(?:{_HTML_TAGS})(?![\w-]){_ATTRS}>"
_CLOSE = rf"</(?:{_HTML_TAGS})\s*>"


def _tag(names: str, closing: bool | None) -> re.Pattern:
    """A pattern for tags `names`: opening (with attributes) when closing is False, closing when True, both None."""
    opening, ending = rf"<(?:{names})(?![\w-]){_ATTRS}>", rf"</(?:{names})\s*>"
    pattern = {False: opening, True: ending, None: f"{opening}|{ending}"}[closing]
    return re.compile(pattern, re.IGNORECASE)


_BLOCK_TAG = re.compile("|".join([_tag("br|p|div|h[1-6]|pre", None).pattern, _tag("li|tr", True).pattern]),
                        re.IGNORECASE)
_LIST_ITEM = _tag("li", False)
_SUP = re.compile(r"<sup\s*>(.*?)</sup\s*>", re.IGNORECASE | re.DOTALL)
_SUB = re.compile(r"<sub\s*>(.*?)</sub\s*>", re.IGNORECASE | re.DOTALL)
_DROPPED = re.compile(rf"<(script|style)(?![\w-]){_ATTRS}>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(f"{_OPEN}|{_CLOSE}|<!--.*?-->", re.IGNORECASE | re.DOTALL)

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

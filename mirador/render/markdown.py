"""Markdown primitives. Every value that reaches a report goes through `cell`, `code` or
`text` here, so `|`, newlines, HTML and backticks cannot break a table or inject markup."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def text(value: Any) -> str:
    """Inline prose: HTML-escaped, newlines folded to spaces."""
    s = "" if value is None else str(value)
    return html.escape(" ".join(s.split()), quote=False)


def cell(value: Any) -> str:
    """A table cell: escape HTML and `|`, keep line breaks as <br>."""
    s = "" if value is None else str(value)
    s = html.escape(s, quote=False).replace("|", "\\|")
    return "<br>".join(part for part in s.replace("\r\n", "\n").split("\n"))


def code(value: Any) -> str:
    """An inline code span that survives backticks and `|` inside tables."""
    s = " ".join(("" if value is None else str(value)).splitlines())
    if not s:
        return "` `"
    longest = 0
    run = 0
    for ch in s:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s.replace('|', chr(92) + '|')}{pad}{fence}"


def shorten(value: Any, limit: int = 120) -> str:
    s = " ".join(("" if value is None else str(value)).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
          raw: bool = False) -> str:
    """A GFM table; cells are escaped unless `raw` (already rendered with `code`)."""
    fmt = (lambda v: "" if v is None else str(v)) if raw else cell
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def fenced(body: str, lang: str = "") -> str:
    longest = max((len(r) for r in body.split("\n") if set(r.strip()) == {"`"}), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body.rstrip()}\n{fence}\n"


def _mermaid_label(label: Any) -> str:
    return str(label).replace('"', "'").replace("\n", " ")


def mermaid_pie(title: str, counts: Mapping[str, int]) -> str:
    lines = [f"pie showData title {_mermaid_label(title)}"]
    lines += [f'    "{_mermaid_label(k)}" : {v}' for k, v in counts.items() if v]
    return fenced("\n".join(lines), "mermaid")


def mermaid_bar(title: str, labels: Sequence[str], values: Sequence[float],
                y_label: str) -> str:
    names = ", ".join(f'"{_mermaid_label(label)}"' for label in labels)
    nums = ", ".join(f"{v:.3g}" for v in values)
    top = max(values, default=1) * 1.1 or 1
    body = (f'xychart-beta\n    title "{_mermaid_label(title)}"\n    x-axis [{names}]\n'
            f'    y-axis "{_mermaid_label(y_label)}" 0 --> {top:.3g}\n    bar [{nums}]')
    return fenced(body, "mermaid")


def bullets(items: Iterable[str]) -> str:
    return "".join(f"- {item}\n" for item in items)


def numbered(items: Iterable[str]) -> str:
    return "".join(f"{i}. {item}\n" for i, item in enumerate(items, 1))

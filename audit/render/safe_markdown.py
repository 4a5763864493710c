"""Untrusted Markdown (from cards) to inert HTML: markdown-it-py with raw HTML off, then nh3.

Links become their text followed by the URL as plain text, images become "[image: alt]":
the output carries no href, src or style from the card, so neither a browser nor
WeasyPrint can be made to fetch anything, and `javascript:` links cannot exist.
"""

from __future__ import annotations

from typing import Any

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "span",
}
MAX_INPUT_CHARS = 20_000


def _link_open(self: Any, tokens: Any, idx: int, options: Any, env: dict[str, Any]) -> str:
    env.setdefault("hrefs", []).append(str(tokens[idx].attrGet("href") or ""))
    return ""


def _link_close(self: Any, tokens: Any, idx: int, options: Any, env: dict[str, Any]) -> str:
    href = env.get("hrefs", [""]).pop() if env.get("hrefs") else ""
    if href.lower().startswith(("http://", "https://")):
        return f' <span class="url">({escape(href[:300])})</span>'
    return ""


def _image(self: Any, tokens: Any, idx: int, options: Any, env: dict[str, Any]) -> str:
    alt = tokens[idx].content or "image"
    return f'<span class="url">[image: {escape(alt[:200])}]</span>'


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("image", _image)
    return md


_MD = _parser()


def markdown_to_safe_html(text: str) -> Markup:
    """Render untrusted Markdown to sanitised HTML fit for the report."""
    if len(text) > MAX_INPUT_CHARS:
        text = text[:MAX_INPUT_CHARS] + "\n\n…"
    html = _MD.render(text, {})
    clean = nh3.clean(
        html, tags=ALLOWED_TAGS, attributes={"span": {"class"}}, url_schemes=set(), link_rel=None
    )
    return Markup(clean)

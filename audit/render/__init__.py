"""Renderers: one AuditReport in, bytes out. json, html, pdf, md are built in; others come via entry points."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

from audit.errors import UsageError
from audit.model import AuditReport

Renderer = Callable[[AuditReport], bytes]

# format -> ("module:function", file name). Lazy: WeasyPrint is imported only for PDF.
BUILTIN: dict[str, tuple[str, str]] = {
    "json": ("audit.render.json_report:render_json", "report.json"),
    "html": ("audit.render.html:render_html", "report.html"),
    "pdf": ("audit.render.pdf:render_pdf", "report.pdf"),
    "md": ("audit.render.markdown:render_markdown", "report.md"),
}
ENTRY_POINT_GROUP = "model_audit.renderers"


def available_formats() -> dict[str, tuple[str, str]]:
    """Built-in formats plus those third parties register under the entry-point group."""
    formats = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        formats.setdefault(ep.name, (ep.value, f"report.{ep.name}"))
    return formats


def parse_formats(spec: str) -> list[str]:
    """'html,pdf' -> ['html', 'pdf'] with a did-you-mean error for unknown names."""
    known = available_formats()
    out = []
    for name in (s.strip().lower() for s in spec.split(",")):
        if not name:
            continue
        if name == "markdown":
            name = "md"
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"choose from {', '.join(known)}"
            raise UsageError(f"unknown report format '{name}'", hint)
        if name not in out:
            out.append(name)
    if not out:
        raise UsageError("no report format given", f"choose from {', '.join(known)}")
    return out


def renderer(fmt: str) -> tuple[Renderer, str]:
    """The render function and output file name of a format."""
    target, filename = available_formats()[fmt]
    module, _, attr = target.partition(":")
    fn: Renderer = getattr(importlib.import_module(module), attr)
    return fn, filename

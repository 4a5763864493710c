"""Renderers: one AuditReport in, bytes out. json, html, pdf, md are built in; others come via entry points."""

from __future__ import annotations

from collections.abc import Callable

from audit.errors import UsageError
from audit.model import AuditReport

Renderer = Callable[[AuditReport], bytes]


def available_formats() -> dict[str, tuple[str, str]]:
    """Every registered format -> (`module:function`, file name `report.<format>`); lazy (WeasyPrint only for pdf)."""
    from audit.registry import RENDERERS

    return {name: (p.target, f"report.{name}") for name, p in RENDERERS.plugins().items()}


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
    from audit.registry import RENDERERS

    fn: Renderer = RENDERERS.load(fmt)
    return fn, f"report.{fmt}"

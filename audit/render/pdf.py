"""report.pdf: WeasyPrint from the same HTML, print CSS, and a URL fetcher that allows data: only."""

from __future__ import annotations

from audit.errors import RenderError
from audit.model import AuditReport
from audit.render.html import render_html_text


def _fetcher() -> object:
    from weasyprint.urls import URLFetcher

    # WeasyPrint fetches file:// and http:// URLs found in HTML by default; ours refuses all but data:.
    return URLFetcher(allowed_protocols={"data"}, timeout=1, allow_redirects=False)


def render_pdf(report: AuditReport) -> bytes:
    """The report as PDF bytes."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: Pango missing
        raise RenderError(
            f"PDF rendering is unavailable: {exc}",
            "install WeasyPrint's system libraries (libpango-1.0-0 libpangoft2-1.0-0), or use --format html,json,md",
        ) from exc
    html = render_html_text(report, for_print=True)
    pdf = HTML(string=html, base_url=None, url_fetcher=_fetcher()).write_pdf()
    if not isinstance(pdf, bytes):
        raise RenderError("WeasyPrint returned no PDF", "")
    return pdf

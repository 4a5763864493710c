"""Renderers: JSON round trip and schema, self-contained inert HTML, PDFs read back, escaped Markdown, atomic writes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import FULL_BODY, card
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.config import AuditOptions
from audit.model import AuditReport
from audit.pipeline import audit_model, render_dir, write_report
from audit.render.markdown import md_escape, render_markdown
from audit.render.safe_markdown import markdown_to_safe_html
from audit.serialize import report_from_json, report_schema, report_to_json

NEEDS_PDFTOTEXT = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed"
)


class _Audit(HTMLParser):
    """Collects tags and attributes that could execute or fetch anything."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        active = {
            "script",
            "iframe",
            "object",
            "embed",
            "link",
            "img",
            "base",
            "form",
            "video",
            "audio",
            "source",
        }
        if tag in active | {"image", "foreignobject"}:
            self.bad.append(f"<{tag}>")
        fetching = {"src", "srcset", "href", "xlink:href", "action", "formaction", "background", "poster"}
        for name, value in attrs:
            v = (value or "").strip().lower()
            if tag == "use" and name in {"href", "xlink:href"} and v.startswith("#"):
                continue  # our own SVG charts reference their own glyph definitions
            if name.startswith("on") or name in fetching:
                self.bad.append(f"{tag}[{name}={v[:40]}]")
            if name == "style" and "url(" in v:
                self.bad.append(f"{tag}[style url]")


def html_problems(html: str) -> list[str]:
    p = _Audit()
    p.feed(html)
    css = "".join(re.findall(r"<style>(.*?)</style>", html, re.S))
    if "url(" in css or "@import" in css:
        p.bad.append("css fetch")
    return p.bad


def hostile_body(leak_url: str) -> str:
    return f"""
# <script>alert('title')</script> Evil Model {{{{ 7*7 }}}}

## Intended uses
Use it <script>document.location='{leak_url}'</script> for everything.
[click me](javascript:alert(1)) and [local](file:///etc/passwd) and [web]({leak_url}/link)
![tracker]({leak_url}/pixel.png) <img src="{leak_url}/img.png"> <img src="file:///etc/hostname">
<link rel="attachment" href="file:///etc/hostname"> <iframe src="{leak_url}/frame"></iframe>
<a href="javascript:alert(2)" onclick="alert(3)">x</a> <div style="background:url({leak_url}/css)">y</div>
{{% for x in range(10) %}}loop{{% endfor %}} {{{{ config.__class__.__init__.__globals__ }}}}

## Out-of-scope uses
<svg onload="alert(4)"><use href="file:///etc/hostname#x"/></svg> and more words to make this count as content.

## Bias, Risks, and Limitations
<style>@import url({leak_url}/style.css);</style> Bias text that is long enough to count as documentation.
"""


@pytest.fixture
def hostile_report(hub: Any, options: AuditOptions, tmp_path: Path) -> AuditReport:
    leak = hub.url
    meta = {
        "license": "other",
        "license_name": "<script>x</script>",
        "license_link": "javascript:alert(1)",
        "datasets": [f"{leak}/ds", "<b>bold</b>"],
        "tags": ["<img src=x onerror=alert(1)>"],
    }
    path = tmp_path / "evil.md"
    path.write_text(card(meta, hostile_body(leak)))
    return audit_model(str(path), options.model_copy(update={"fetch_datasets": True}))


def test_json_round_trip_and_schema(hub: Any, options: AuditOptions, tmp_path: Path) -> None:
    import jsonschema

    path = tmp_path / "m.md"
    path.write_text(
        card(
            {
                "license": "mit",
                "datasets": ["a/b"],
                "model-index": [
                    {
                        "name": "m",
                        "results": [
                            {
                                "task": {"type": "t"},
                                "dataset": {"type": "d", "name": "D"},
                                "metrics": [{"type": "acc", "value": 0.5}],
                            }
                        ],
                    }
                ],
            }
        )
    )
    report = audit_model(str(path), options)
    text = report_to_json(report)
    assert report_from_json(text) == report
    jsonschema.validate(json.loads(text), report_schema())
    assert json.loads(text)["schema_version"] == "1.1"


def test_schema_1_0_reports_are_migrated_on_read(tmp_path: Path) -> None:
    """1.0 reports kept `protocol` as a dict whose shape changed by method; 1.1 types it."""
    from audit.model import GenerationProtocol, MethodProtocol
    from audit.pipeline import audit_model

    path = tmp_path / "card.md"
    path.write_text(card({"license": "mit"}, FULL_BODY))
    data = json.loads(report_to_json(audit_model(str(path))))
    gen = {"backend": {"backend": "hf"}, "prompts": 3, "samples_per_prompt": 2, "max_new_tokens": 20}
    gen |= {"temperature": 1.0, "top_p": 0.9, "seed": 0, "decoding": "nucleus sampling"}
    data["schema_version"] = "1.0"
    data["probes"] = [
        {"suite": "toxicity-continuation", "version": "1.0", "protocol": gen},
        {"suite": "crows-pairs", "version": "1.0", "protocol": {"pairs": 10, "seed": 0}},
        {"suite": "bold", "version": "1.0", "protocol": {}, "skipped": "not for this model"},
    ]
    report = report_from_json(json.dumps(data))
    assert report.schema_version == "1.1"
    assert report.probes[0].protocol == GenerationProtocol(**gen)  # type: ignore[arg-type]
    assert report.probes[1].protocol == MethodProtocol("crows-pairs", {"pairs": 10, "seed": 0})
    assert report.probes[2].protocol is None


def test_invalid_report_json_is_a_clear_error() -> None:
    from audit.errors import UsageError

    with pytest.raises(UsageError, match="not a valid audit report"):
        report_from_json('{"schema_version": "1.0"}')


def test_html_is_self_contained_and_inert(hostile_report: AuditReport) -> None:
    from audit.render.html import render_html

    html = render_html(hostile_report).decode()
    assert html_problems(html) == []
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html  # shown as text, escaped
    assert "{{ 7*7 }}" in html and ">49<" not in html  # never evaluated as a template
    assert "loop" not in html.replace("{% for x in range(10) %}loop{% endfor %}", "")
    assert "Content-Security-Policy" in html


def test_pdf_fetches_nothing_and_embeds_nothing(
    hostile_report: AuditReport, hub: Any, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    from audit.render.pdf import render_pdf

    hub.requests.clear()
    pdf = render_pdf(hostile_report)
    assert hub.requests == []  # WeasyPrint made no request to the leak URLs
    out = tmp_path / "r.pdf"
    out.write_bytes(pdf)
    reader = PdfReader(str(out))
    assert reader.attachments == {}
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "\x00none"
    text = "".join(p.extract_text() or "" for p in reader.pages)
    assert "Executive summary" in text
    assert hostname not in text.replace("model-risk-audit", "") or len(hostname) < 4


def test_markdown_summary_escapes_card_text(hostile_report: AuditReport) -> None:
    md = render_markdown(hostile_report).decode()
    assert "<script>" not in md and "<b>" not in md
    assert "](" not in md  # no links can be formed from card text
    assert md_escape("a|b<c>[x](y) *z*") == r"a\|b\<c\>\[x\]\(y\) \*z\*"
    assert md_escape("see https://x.org") == "see https:&#8203;//x.org"


def test_safe_markdown_keeps_structure_drops_everything_active() -> None:
    html = str(
        markdown_to_safe_html(
            "**bold** [a](https://x.org/p) [b](javascript:alert(1)) ![i](http://x/y.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<b onclick=x>raw</b>"
        )
    )
    assert "<strong>bold</strong>" in html
    assert 'a <span class="url">(https://x.org/p)</span>' in html
    assert "[b](javascript:alert(1))" in html  # markdown-it refuses the link: it stays literal text
    assert "[image: i]" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "&lt;b onclick=x&gt;raw&lt;/b&gt;" in html
    assert html_problems(html) == []


@NEEDS_PDFTOTEXT
@pytest.mark.slow
def test_pdf_read_back_with_pdftotext(hub: Any, options: AuditOptions, tmp_path: Path) -> None:
    hub.add_model(
        "org/pdfmodel",
        {"README.md": card({"license": "cc-by-nc-4.0", "datasets": ["org/pdfdata"]}, FULL_BODY)},
    )
    hub.add_dataset("org/pdfdata", card({"license": ["cc-by-nc-sa-4.0"]}))
    report = audit_model("org/pdfmodel", options)
    paths = write_report(report, tmp_path / "out", ["pdf"])
    pdf = tmp_path / "out" / "report.pdf"
    assert pdf in paths
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for needle in (
        "org/pdfmodel",
        "Executive summary",
        "HIGH RISK",
        "license.noncommercial",
        "license.conflict",
        "dataset.noncommercial",
        "Page 1 of",
        report.run.resolved_revision[:12],
        "Methodology and provenance",
    ):
        assert needle in text, needle
    # The running header carries the model id and revision on every page.
    pages = text.split("\f")
    assert all(f"org/pdfmodel @ {report.run.resolved_revision[:12]}" in p for p in pages if p.strip())


def test_failed_render_leaves_nothing_behind(
    options: AuditOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import audit.render.pdf as pdfmod

    path = tmp_path / "m.md"
    path.write_text(card({"license": "mit"}))
    report = audit_model(str(path), options.model_copy(update={"fetch_datasets": False}))

    def boom(_: AuditReport) -> bytes:
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(pdfmod, "render_pdf", boom)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        write_report(report, out, ["json", "html", "pdf"])
    assert not out.exists() or list(out.iterdir()) == []


def test_render_dir_rerenders_without_collecting(hub: Any, options: AuditOptions, tmp_path: Path) -> None:
    path = tmp_path / "m.md"
    path.write_text(card({"license": "mit"}))
    report = audit_model(str(path), options.model_copy(update={"fetch_datasets": False}))
    out = tmp_path / "run"
    write_report(report, out, ["json"])
    before = (out / "report.json").read_bytes()
    paths = render_dir(out, ["html", "md"])
    assert {p.name for p in paths} == {"report.html", "report.md"}
    assert (out / "report.json").read_bytes() == before
    assert hub.requests == []


_card_text = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "# ",
                "## Intended uses\n",
                "<script>",
                "</script>",
                "javascript:",
                "[a](",
                ")",
                "![x](file:///etc/passwd)",
                "{{ x }}",
                "{% if %}",
                "<img src=x>",
                "|",
                "---\n",
                "```\n",
                "**",
                "\n\n",
                "<!--",
                "-->",
                "&amp;",
                "\x1b[31m",
            ]
        ),
        st.text(max_size=40),
    ),
    max_size=30,
).map("".join)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    body=_card_text, license_value=st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3))
)
def test_fuzz_card_to_html_and_markdown(body: str, license_value: Any) -> None:
    from audit.render.html import render_html

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "card.md"
        meta = json.dumps({"license": license_value, "datasets": "single/dataset"})
        path.write_bytes(
            f"---\nmeta: {meta}\nlicense: {json.dumps(license_value)}\n---\n{body}".encode("utf-8", "replace")
        )
        report = audit_model(str(path), AuditOptions(fetch_datasets=False))
    html = render_html(report).decode()
    assert html_problems(html) == []
    md = render_markdown(report).decode()
    assert "<script" not in md.lower()
    assert report_from_json(report_to_json(report)) == report


def test_weasyprint_fetcher_refuses_file_and_network_urls(hub: Any, tmp_path: Path) -> None:
    """Defence in depth: even HTML that did carry URLs would fetch nothing through our fetcher."""
    from pypdf import PdfReader
    from weasyprint import HTML

    from audit.render.pdf import _fetcher

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    html = (
        f'<html><body><img src="{hub.url}/pixel.png"><link rel="attachment" href="file://{secret}">'
        f'<link rel="stylesheet" href="{hub.url}/s.css"><p>ok</p></body></html>'
    )
    hub.requests.clear()
    pdf = HTML(string=html, base_url=None, url_fetcher=_fetcher()).write_pdf()
    assert hub.requests == []
    out = tmp_path / "x.pdf"
    out.write_bytes(pdf)
    assert PdfReader(str(out)).attachments == {}
    assert b"TOP-SECRET-CONTENT" not in pdf


def test_published_schema_is_current() -> None:
    """schema/report.schema.json is the published schema: regenerate it with `model-audit schema` when the model changes."""
    published = json.loads(
        (Path(__file__).resolve().parents[1] / "schema" / "report.schema.json").read_text()
    )
    assert published == report_schema()


def test_markdown_after_a_gate_has_no_stray_escapes_in_code_spans(
    hub: Any, options: AuditOptions, tmp_path: Path
) -> None:
    """Rule and finding ids sit in code spans verbatim (no backslashes), one value per table column."""
    from markdown_it import MarkdownIt

    from audit.pipeline import apply_policy

    path = tmp_path / "m.md"
    path.write_text(card({"license": "cc-by-nc-4.0"}, "# Model\n\nNo sections here.\n"))
    report = apply_policy(
        audit_model(str(path), options.model_copy(update={"fetch_datasets": False})), "default"
    )
    md = render_markdown(report).decode()
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    spans = [
        c.content for t in tokens if t.type == "inline" for c in (t.children or []) if c.type == "code_inline"
    ]
    assert "finding:docs.section_missing.bias_risks_limitations" in spans
    assert not [s for s in spans if "\\" in s]
    for i, t in enumerate(tokens):
        if t.type == "table_open":
            widths = []
            j = i
            while tokens[j].type != "table_close":
                if tokens[j].type == "tr_open":
                    widths.append(0)
                if tokens[j].type in ("th_open", "td_open"):
                    widths[-1] += 1
                j += 1
            assert len(set(widths)) == 1, widths

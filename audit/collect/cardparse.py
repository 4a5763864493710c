"""A hardened card parser: bytes in, metadata + Markdown body + problems out.

Cards are untrusted. huggingface_hub's own `ModelCard.load` raises MemoryError on a
YAML alias bomb, RecursionError on deep nesting and UnicodeDecodeError on bad bytes.
This parser instead bounds every cost: the card size, the front-matter size, the YAML
nesting depth, the number of aliases and the expanded size of the YAML graph. Whatever
it cannot read becomes a problem string, never an exception.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_DEPTH = 48
MAX_ALIASES = 256
MAX_EXPANDED_NODES = 200_000
MAX_STRING_CHARS = 100_000


class CardYAMLError(ValueError):
    """The front matter is not YAML we are willing to read."""


MetadataProblemCode = Literal["unclosed", "too_large", "unparseable", "not_mapping"]


@dataclass(frozen=True)
class MetadataProblem:
    """Why the front matter could not be read: a typed code and the message shown as evidence."""

    code: MetadataProblemCode
    message: str


@dataclass
class ParsedCard:
    """The result of parsing one card. `readable` is False when the bytes cannot be decoded."""

    readable: bool
    text: str = ""
    body: str = ""
    body_line_offset: int = 0
    has_front_matter: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_ok: bool = True
    problems: list[str] = field(default_factory=list)
    metadata_problems: list[MetadataProblem] = field(default_factory=list)
    size_bytes: int = 0
    truncated: bool = False


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and alias explosions while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise CardYAMLError(f"more than {MAX_ALIASES} YAML aliases")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise CardYAMLError(f"YAML nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: Node) -> int:
    """Number of nodes the YAML graph would have with every alias expanded (memoised, linear)."""
    memo: dict[int, int] = {}
    visiting: set[int] = set()
    # Iterative post-order walk: no recursion, so no RecursionError on hostile input.
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in memo:
            continue
        if not done:
            if key in visiting:
                raise CardYAMLError("recursive YAML alias (a node contains itself)")
            visiting.add(key)
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                children.extend((k, v))
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in memo)
            continue
        total = 1
        for c in children:
            total += memo.get(id(c), 1)
            if total > MAX_EXPANDED_NODES:
                raise CardYAMLError("YAML expands to too many nodes (alias bomb?)")
        memo[key] = total
        visiting.discard(key)
    return memo[id(root)]


def _clean_str(value: str) -> str:
    """Bound a string and repair YAML's "\\ud83d\\ude00" escapes (pairs joined, lone surrogates replaced)."""
    if len(value) > MAX_STRING_CHARS:
        value = value[:MAX_STRING_CHARS] + "…"
    if any("\ud800" <= c <= "\udfff" for c in value):
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def _to_plain(value: Any, depth: int = 0) -> Any:
    """Turn loaded YAML into JSON-safe data (str keys, no dates, no NaN, bounded strings)."""
    if depth > MAX_DEPTH + 2:
        raise CardYAMLError("YAML nested too deeply")
    if isinstance(value, dict):
        return {str(_to_plain(k, depth + 1)): _to_plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_to_plain(v, depth + 1) for v in value]
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes of binary data>"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return _clean_str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def load_yaml_bounded(text: str) -> Any:
    """Load YAML safely with bounded depth, aliases and expanded size. Raises CardYAMLError."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        data = loader.construct_document(node)
    except CardYAMLError:
        raise
    except yaml.YAMLError as exc:
        raise CardYAMLError(_short_yaml_error(exc)) from exc
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError) as exc:
        raise CardYAMLError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    finally:
        loader.dispose()
    return _to_plain(data)


def _short_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"YAML error{where}: {str(problem)[:200]}"


_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)


def decode_card(data: bytes) -> str | None:
    """Decode card bytes as UTF-8 (or UTF-16 with a BOM). None when the bytes are not text.

    Valid UTF-8 with a few stray NUL characters is text (NULs become U+FFFD); bytes that
    are mostly NULs or not UTF-8 at all are binary.
    """
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[2:].decode(codec)
            except UnicodeDecodeError:
                return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    nuls = text.count("\x00")
    if nuls:
        if nuls > max(8, len(text) // 100):
            return None
        text = text.replace("\x00", "\ufffd")
    return text


def _metadata_problem(parsed: ParsedCard, code: MetadataProblemCode, message: str) -> None:
    parsed.metadata_ok = False
    parsed.problems.append(message)
    parsed.metadata_problems.append(MetadataProblem(code, message))


def parse_card(
    data: bytes,
    *,
    max_card_bytes: int = 4 << 20,
    max_metadata_bytes: int = 512 << 10,
    total_size: int | None = None,
) -> ParsedCard:
    """Parse a card (model or dataset) from bytes. Never raises on hostile input.

    `total_size` is the file's real size when only its first bytes were read.
    """
    size = max(len(data), total_size or 0)
    truncated = False
    if size > max_card_bytes:
        data = data[:max_card_bytes]
        truncated = True
    text = decode_card(data)
    if text is None and truncated:
        # The cut may have split a multi-byte character: drop at most 3 trailing bytes.
        for cut in (1, 2, 3):
            text = decode_card(data[:-cut])
            if text is not None:
                break
    if text is None:
        return ParsedCard(
            readable=False,
            problems=["the card is not valid UTF-8 text (binary or another encoding)"],
            size_bytes=size,
            truncated=truncated,
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parsed = ParsedCard(readable=True, text=text, body=text, size_bytes=size, truncated=truncated)
    if truncated:
        parsed.problems.append(f"the card is {size:,} bytes; only the first {max_card_bytes:,} were analysed")
    if not text.startswith("---"):
        return parsed
    first_nl = text.find("\n")
    if first_nl < 0 or text[:first_nl].strip() != "---":
        return parsed
    end = _FRONT_MATTER_END.search(text, first_nl + 1)
    if end is None:
        parsed.has_front_matter = True
        _metadata_problem(parsed, "unclosed", "the YAML front matter is never closed with '---'")
        return parsed
    raw_yaml = text[first_nl + 1 : end.start()]
    parsed.has_front_matter = True
    parsed.body = text[end.end() :].lstrip("\n")
    parsed.body_line_offset = text.count("\n", 0, len(text) - len(parsed.body))
    if len(raw_yaml.encode("utf-8", "replace")) > max_metadata_bytes:
        _metadata_problem(
            parsed, "too_large", f"the YAML front matter is larger than {max_metadata_bytes:,} bytes"
        )
        return parsed
    try:
        meta = load_yaml_bounded(raw_yaml)
    except CardYAMLError as exc:
        _metadata_problem(parsed, "unparseable", f"the YAML front matter does not parse: {exc}")
        return parsed
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        _metadata_problem(
            parsed, "not_mapping", f"the YAML front matter is a {type(meta).__name__}, not a mapping"
        )
        return parsed
    parsed.metadata = meta
    return parsed

"""User YAML (suites, profiles): bounded safe loading and validation errors that name the line.

One loader for every YAML file a user writes: the card parser's bounded loader (no code, no alias
bombs, no deep nesting), a mapping at the top, then pydantic validation whose errors are turned
into `line N: path: message` with the line of the offending node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from audit.errors import AuditError

T = TypeVar("T")


def line_of(root: Node | None, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location (the nearest existing parent)."""
    cur = root
    if cur is None:
        return None
    for part in loc:
        if isinstance(cur, MappingNode):
            nxt = next((v for k, v in cur.value if getattr(k, "value", None) == part), None)
            if nxt is None:
                key = next((k for k, _ in cur.value if getattr(k, "value", None) == part), None)
                return (key.start_mark.line + 1) if key is not None else cur.start_mark.line + 1
            cur = nxt
        elif isinstance(cur, SequenceNode) and isinstance(part, int) and 0 <= part < len(cur.value):
            cur = cur.value[part]
        else:
            break
    return int(cur.start_mark.line) + 1


def load_validated(
    text: str,
    source: str,
    what: str,
    validate: Callable[[dict[str, Any]], T],
    error: type[AuditError],
    hint: str,
    skip_tags: Sequence[str] = (),
) -> T:
    """Load YAML `text` (bounded, safe), require a mapping, validate it; errors name the file and line.

    `skip_tags` are discriminator tags pydantic puts first in a union's error locations (not YAML keys).
    """
    from audit.collect.cardparse import _BoundedLoader

    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise error(
            f"{source}{where}: not valid YAML ({getattr(exc, 'problem', exc)})", "fix the YAML syntax"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - the bounded loader's refusals (alias bombs, nesting)
        raise error(
            f"{source}: refused ({exc})", f"a {what} is plain YAML: no alias bombs or deep nesting"
        ) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise error(f"{source}: a {what} is a YAML mapping", hint)
    try:
        return validate(data)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors()[:5]:
            loc = tuple(err["loc"])
            if loc and loc[0] in skip_tags:
                loc = loc[1:]
            line = line_of(node, loc)
            where = ".".join(str(p) for p in loc) or "(top level)"
            msgs.append(f"line {line}: {where}: {err['msg']}" if line else f"{where}: {err['msg']}")
        raise error(f"{source}: invalid {what}: " + "; ".join(msgs), hint) from exc

"""Validation of every part of a Hub reference before any call: repo ids and revisions.

huggingface_hub writes the resolved commit of a revision into `refs/<revision>` inside its
cache, so a revision such as `../../../../etc/x` would write outside the cache. Every revision
is checked against git's ref-name grammar (what the Hub accepts) before it reaches the library;
the Hub's own forms keep working: branch names with `/`, `refs/pr/N`, tags and commit shas.
"""

from __future__ import annotations

import re

from audit.errors import InvalidRefError

MAX_REVISION_CHARS = 256
_REPO_PART = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}$")
# git check-ref-format: no control characters, space, ~ ^ : ? * [ or backslash anywhere.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def revision_problem(revision: str) -> str | None:
    """Why a revision is not a valid git ref name (None when it is valid)."""
    if not revision:
        return "it is empty"
    if len(revision) > MAX_REVISION_CHARS:
        return f"it is longer than {MAX_REVISION_CHARS} characters"
    bad = _FORBIDDEN.search(revision)
    if bad:
        char = bad.group()
        shown = repr(char) if char.isprintable() and char != " " else f"U+{ord(char):04X}"
        return f"it contains the character {shown}"
    if ".." in revision:
        return "it contains '..'"
    if revision.startswith(("/", "-")):
        return "it starts with '/' or '-' (an absolute path or an option)"
    if revision.endswith(("/", ".", ".lock")):
        return "it ends with '/', '.' or '.lock'"
    if "//" in revision:
        return "it contains an empty path segment ('//')"
    if "@{" in revision or revision == "@":
        return "it contains '@{' or is '@'"
    if any(part.startswith(".") for part in revision.split("/")):
        return "a segment starts with '.'"
    return None


def check_revision(revision: str | None, what: str = "revision") -> str | None:
    """Return the revision unchanged, or raise InvalidRefError (exit 2) naming what is wrong."""
    if revision is None:
        return None
    problem = revision_problem(revision)
    if problem:
        raise InvalidRefError(
            f"{what} {revision[:80]!r} is not a valid branch, tag or commit: {problem}",
            "use a branch (main, release/v1), a tag, a commit sha or refs/pr/N",
        )
    return revision


def repo_id_problem(repo_id: str) -> str | None:
    """Why a repo id is not a Hub repo id (`name` or `org/name`), or None."""
    if not repo_id:
        return "it is empty"
    parts = repo_id.split("/")
    if len(parts) > 2:
        return "it has more than one '/'"
    for part in parts:
        if not _REPO_PART.match(part):
            return f"'{part[:40]}' is not a valid name (letters, digits, '-', '_', '.'; at most 96)"
        if ".." in part or part.endswith((".", "-")):
            return f"'{part[:40]}' contains '..' or ends with '.' or '-'"
    return None


def check_repo_id(repo_id: str, what: str = "repo id") -> str:
    """Return the repo id unchanged, or raise InvalidRefError (exit 2)."""
    problem = repo_id_problem(repo_id)
    if problem:
        raise InvalidRefError(
            f"{what} {repo_id[:100]!r} is not a Hub repo id: {problem}",
            "use org/name, e.g. openai/gpt-oss-20b",
        )
    return repo_id

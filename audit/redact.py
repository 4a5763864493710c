"""One redaction of credentials, used wherever a URL or a message may be shown or recorded.

Credentials in a URL are its userinfo (`http://user:PASSWORD@host`) and query parameters whose
name says key, token, signature, secret, password or credential (`?api-key=...`, `&sig=...`).
Both are replaced by `***` before a URL reaches a report, a log, an error or a cache key.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

MASK = "***"
_SECRET_WORDS = frozenset(
    [
        "key",
        "apikey",
        "token",
        "accesstoken",
        "sig",
        "signature",
        "secret",
        "password",
        "passwd",
        "pwd",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "sas",
        "session",
        "sessionid",
    ]
)
# A URL inside free text (a message, a traceback line): scheme://... up to whitespace or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s'\"<>`]+")
# Bearer tokens and api-key headers echoed by libraries in error texts.
_BEARER = re.compile(r"(?i)\b(bearer\s+|api[-_]?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]{8,}")


# key=value pairs of a query, separated by '&' or ';' (both are used), encoding kept as it was.
_QUERY_PAIR = re.compile(r"(^|[&;])([^=&;]*)=([^&;]*)")


def _mask_pair(m: re.Match[str]) -> str:
    return f"{m.group(1)}{m.group(2)}={MASK}" if is_secret_name(unquote(m.group(2))) else m.group(0)


def is_secret_name(name: str) -> bool:
    """True for an option or parameter name that holds a credential (api_key, token, sig, ...)."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    if not words or words[-1] in {"env", "file", "path", "name"}:
        return False  # the name of a variable or file that holds the secret, not the secret
    return any(w in _SECRET_WORDS for w in words) or "".join(words) in _SECRET_WORDS


def redact_url(url: str) -> str:
    """The URL without credentials: userinfo and secret-named query parameters become `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_IN_TEXT.sub(MASK, url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = _QUERY_PAIR.sub(_mask_pair, parts.query) if parts.query else ""
    fragment = parts.fragment
    if fragment and "=" in fragment and any(is_secret_name(k) for k, _ in parse_qsl(fragment)):
        fragment = MASK
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_text(text: str) -> str:
    """Free text (an error message, a log line, a traceback) with every URL in it redacted."""
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)
    return _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", out)


def redact_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options as recorded in a report: secret-named values masked, URLs redacted."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if is_secret_name(key) and value not in (None, ""):
            out[key] = MASK
        elif isinstance(value, str):
            out[key] = redact_text(value)
        else:
            out[key] = value
    return out

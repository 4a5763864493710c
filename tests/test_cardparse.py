"""The hardened card parser against hostile cards: bounded time and memory, problems instead of crashes."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.collect.cardparse import CardYAMLError, load_yaml_bounded, parse_card

ALIAS_BOMB = """---
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
license: mit
---
# Bomb
"""


def test_plain_card_metadata_and_body() -> None:
    p = parse_card(b"---\nlicense: mit\ndatasets:\n- a/b\n---\n\n# Title\n\nText\n")
    assert p.readable and p.metadata_ok and p.has_front_matter
    assert p.metadata == {"license": "mit", "datasets": ["a/b"]}
    assert p.body.startswith("# Title")
    assert p.body_line_offset == 6  # the body starts on line 7 of the file
    assert p.problems == []


def test_alias_bomb_is_refused_fast() -> None:
    t0 = time.monotonic()
    p = parse_card(ALIAS_BOMB.encode())
    assert time.monotonic() - t0 < 2.0
    assert p.readable and not p.metadata_ok
    assert p.metadata == {}
    assert any("alias" in x for x in p.problems)
    assert p.body.startswith("# Bomb")  # the body is still analysed


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(CardYAMLError, match="recursive|too many"):
        load_yaml_bounded("a: &a [*a]\n")


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    deep = "x: " + "[" * 50_000 + "]" * 50_000 + "\n"
    p = parse_card(f"---\n{deep}---\nbody\n".encode(), max_metadata_bytes=1 << 20)
    assert not p.metadata_ok
    assert any("nested deeper" in x for x in p.problems)


def test_deep_block_mapping_nesting() -> None:
    lines = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n"
    with pytest.raises(CardYAMLError):
        load_yaml_bounded(lines)


def test_invalid_utf8_is_unreadable() -> None:
    p = parse_card(b"---\nlicense: mit\n---\n# Caf\xe9 \xff\xfe broken\n")
    assert not p.readable
    assert "not valid UTF-8" in p.problems[0]


def test_binary_file_is_unreadable() -> None:
    assert not parse_card(bytes(range(256)) * 10).readable
    assert not parse_card(b"\x00" * 1000).readable  # valid UTF-8, but all NULs


def test_stray_nul_in_text_is_tolerated() -> None:
    p = parse_card(b"---\nlicense: mit\n---\n# T\x00itle\n")
    assert p.readable and p.metadata == {"license": "mit"}
    assert "\ufffd" in p.body


def test_utf16_with_bom_is_read() -> None:
    p = parse_card("\ufeff---\nlicense: mit\n---\n# T\n".encode("utf-16-le"))
    assert p.readable and p.metadata == {"license": "mit"}


def test_utf8_bom_and_crlf() -> None:
    p = parse_card("\ufeff---\r\nlicense: mit\r\n---\r\n# Hello\r\n".encode())
    assert p.metadata == {"license": "mit"}
    assert p.body == "# Hello\n"


def test_huge_card_is_truncated_and_bounded() -> None:
    data = b"---\nlicense: mit\n---\n" + (b"word " * 3_000_000)  # 15 MB
    t0 = time.monotonic()
    p = parse_card(data, max_card_bytes=1 << 20)
    assert time.monotonic() - t0 < 2.0
    assert p.truncated and p.size_bytes == len(data)
    assert len(p.text) <= 1 << 20
    assert p.metadata == {"license": "mit"}


def test_truncation_inside_multibyte_character() -> None:
    data = b"# T\n" + "é".encode() * 1000
    p = parse_card(data, max_card_bytes=1025)  # cuts a 2-byte character in half
    assert p.readable and p.truncated


def test_megabyte_long_line() -> None:
    data = b"---\nlicense: mit\n---\n# T\n" + b"x" * (2 << 20) + b"\n## Intended uses\n"
    p = parse_card(data)
    assert p.readable and p.metadata == {"license": "mit"}


def test_front_matter_too_large() -> None:
    meta = "tags:\n" + "".join(f"- tag{i}\n" for i in range(60_000))
    p = parse_card(f"---\n{meta}---\n# T\n".encode(), max_metadata_bytes=100_000)
    assert not p.metadata_ok
    assert "larger than" in p.problems[0]


def test_unclosed_front_matter() -> None:
    p = parse_card(b"---\nlicense: mit\n# never closed\n")
    assert not p.metadata_ok
    assert "never closed" in p.problems[0]


@pytest.mark.parametrize("yaml_text,kind", [("- a\n- b\n", "list"), ("just text\n", "str"), ("42\n", "int")])
def test_front_matter_not_a_mapping(yaml_text: str, kind: str) -> None:
    p = parse_card(f"---\n{yaml_text}---\n# T\n".encode())
    assert not p.metadata_ok
    assert f"is a {kind}" in p.problems[0]


def test_yaml_syntax_error_points_at_line() -> None:
    p = parse_card(b"---\nlicense: mit\ntags: [a, b\n---\n# T\n")
    assert not p.metadata_ok
    assert "line" in p.problems[0]


def test_python_tags_are_not_executed() -> None:
    p = parse_card(b"---\nx: !!python/object/apply:os.system ['echo pwned']\n---\n# T\n")
    assert not p.metadata_ok
    assert p.metadata == {}


def test_dates_and_odd_keys_become_json_safe() -> None:
    p = parse_card(b"---\ndate: 2024-01-02\n1: one\nnan: .nan\nbin: !!binary aGVsbG8=\n---\n")
    assert p.metadata == {"date": "2024-01-02", "1": "one", "nan": "nan", "bin": "<5 bytes of binary data>"}
    unhashable = parse_card(b"---\n? [a, b]\n: listkey\n---\n")
    assert not unhashable.metadata_ok and "unhashable" in unhashable.problems[0]


def test_jinja_in_card_is_kept_as_text() -> None:
    p = parse_card(b"---\nlicense: '{{ 7*7 }}'\n---\n# {{ config.__class__ }}\n{% for x in y %}\n")
    assert p.metadata["license"] == "{{ 7*7 }}"
    assert "{{ config.__class__ }}" in p.body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_fuzz_bytes_never_raise(data: bytes) -> None:
    p = parse_card(b"---\n" + data, max_card_bytes=2048, max_metadata_bytes=1024)
    assert isinstance(p.problems, list)


yaml_fragments = st.lists(
    st.sampled_from(
        [
            "a: 1\n",
            "- x\n",
            "&a [1]\n",
            "*a\n",
            "b: &b {c: *b}\n",
            "{",
            "}",
            "[",
            "]",
            ": ",
            "? ",
            "!!str ",
            "'",
            '"',
            "\t",
            "  ",
            "license: [mit, {x: y}]\n",
            "datasets: 3\n",
            "model-index: text\n",
            "%YAML 1.1\n",
            "---\n",
            "...\n",
        ]
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(yaml_fragments, st.text(max_size=300))
def test_fuzz_yaml_like_front_matter(fragments: list[str], body: str) -> None:
    text = "---\n" + "".join(fragments) + "\n---\n" + body
    p = parse_card(text.encode("utf-8", "replace"))
    assert p.readable
    assert isinstance(p.metadata, dict)

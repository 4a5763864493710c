"""One formatting of every number, p-value and interval, for every renderer and every finding text.

HTML, PDF, Markdown, the terminal and the findings all call these, so one value reads the same
everywhere. p-values below the display floor read "< 0.001"; report.json keeps the exact value.
Raw and adjusted p-values are always labelled ("raw p = 0.012", "Holm-adjusted p = 0.006").
"""

from __future__ import annotations

import math

__all__ = [
    "P_FLOOR",
    "fmt_ci",
    "fmt_estimate",
    "fmt_num",
    "fmt_p",
    "fmt_p_value",
    "fmt_params",
    "fmt_pct",
    "plural",
]

P_FLOOR = 0.001
DASH = "–"


def fmt_num(v: float | None, digits: int = 3) -> str:
    """A value with fixed digits ('–' for none); never '-0.000'."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return DASH
    s = f"{v:.{digits}f}"
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s


def fmt_p_value(p: float | None) -> str:
    """A bare p-value: '< 0.001' below the floor, two significant digits below 0.01, three decimals
    (rounded down below 0.1, so a p just under 0.05 never reads as 0.050), else three decimals."""
    if p is None or math.isnan(p):
        return DASH
    if p < P_FLOOR:
        return f"< {P_FLOOR:g}"
    if p < 0.01:
        return f"{p:.2g}"
    if (
        p < 0.1
    ):  # two significant digits, rounded down, so p = 0.0496 never reads as 0.050 beside an alpha of 0.05
        return f"{math.floor(p * 1000) / 1000:.3f}"
    return f"{p:.3f}"


def fmt_p(p: float | None, *, adjusted: bool, method: str = "Holm") -> str:
    """A labelled p-value: 'Holm-adjusted p = 0.006', 'raw p = 0.012', 'raw p < 0.001'."""
    label = f"{method}-adjusted p" if adjusted else "raw p"
    value = fmt_p_value(p)
    if value == DASH:
        return f"{label}: none"
    return f"{label} {value}" if value.startswith("<") else f"{label} = {value}"


def fmt_ci(lo: float | None, hi: float | None, digits: int = 3) -> str:
    """A 95% interval as '[0.261, 1.124]', or '–' when there is none."""
    if lo is None or hi is None:
        return DASH
    return f"[{fmt_num(lo, digits)}, {fmt_num(hi, digits)}]"


def fmt_estimate(
    v: float | None, lo: float | None, hi: float | None, n: int | None = None, digits: int = 3
) -> str:
    """'0.710 (95% CI 0.261 to 1.124, n = 64)'; 'no interval' when there is none."""
    parts = []
    if lo is not None and hi is not None:
        parts.append(f"95% CI {fmt_num(lo, digits)} to {fmt_num(hi, digits)}")
    else:
        parts.append("no interval")
    if n is not None:
        parts.append(f"n = {n}")
    return f"{fmt_num(v, digits)} ({', '.join(parts)})"


def fmt_pct(v: float | None, digits: int = 1) -> str:
    """A share 0–1 as a percentage: 0.123 -> '12.3%'."""
    if v is None:
        return DASH
    return f"{100 * v:.{digits}f}%"


def fmt_params(n: int | float | None) -> str:
    """22713216 -> '22.7M'."""
    if n is None:
        return "unknown"
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(int(n))


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 problem', '2 problems', '1 high or critical finding' (the noun is the last word)."""
    if n == 1:
        return f"{n} {word}"
    if many is None:
        head, _, last = word.rpartition(" ")
        many_last = last[:-1] + "ies" if last.endswith("y") and last[-2:-1] not in "aeiou" else last + "s"
        many = f"{head} {many_last}" if head else many_last
    return f"{n} {many}"

"""The tuple query's parameters, checked, in the order its `?` placeholders take them.

Shared by the Athena runner (this folder, deployed) and the DuckDB engine (secml/sql), so a
filter means the same in both. Values are checked against strict patterns: Athena gets them as
SQL literals (execution parameters), which must never carry a quote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DAY = re.compile(r"\A(\d{4})[/-](\d{2})[/-](\d{2})\Z")
_ACCOUNT = re.compile(r"\A\d{12}\Z")
_REGION = re.compile(r"\A[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")


def day(value: str | None, what: str) -> str:
    """'yyyy/MM/dd' (the CloudTrail folder layout) from that or 'yyyy-MM-dd'; '' for none."""
    if not value:
        return ""
    match = _DAY.match(str(value).strip())
    if not match:
        raise ValueError(f"{what} {value!r}: expected a day as yyyy-mm-dd")
    return "/".join(match.groups())


def names(values: str | Iterable[str] | None, pattern: re.Pattern, what: str) -> str:
    """Comma-separated, each checked; '' for none (every one)."""
    if not values:
        return ""
    items = values.split(",") if isinstance(values, str) else list(values)
    items = [str(item).strip() for item in items if str(item).strip()]
    for item in items:
        if not pattern.match(item):
            raise ValueError(f"{what} {item!r} is not valid")
    return ",".join(items)


def query_parameters(
    *,
    first_day: str | None = None,
    last_day: str | None = None,
    accounts: str | Iterable[str] | None = None,
    regions: str | Iterable[str] | None = None,
    ipv4_only: bool = False,
) -> list[str]:
    """The values for cloudtrail_tuples.sql's placeholders, in order (see its header)."""
    first, last = day(first_day, "first day"), day(last_day, "last day")
    if first and last and first > last:
        raise ValueError(f"first day {first_day} is after last day {last_day}")
    account_list = names(accounts, _ACCOUNT, "account")
    region_list = names(regions, _REGION, "region")
    return [
        first,
        first,
        last,
        last,
        account_list,
        account_list,
        region_list,
        region_list,
        "true" if ipv4_only else "false",
    ]


def as_literals(values: list[str]) -> list[str]:
    """Athena's ExecutionParameters: each value as a SQL string literal. The values come from
    query_parameters(), whose patterns admit no quote; checked again here all the same."""
    if any("'" in value for value in values):
        raise ValueError("a query parameter holds a quote")
    return [f"'{value}'" for value in values]

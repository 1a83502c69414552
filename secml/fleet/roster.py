"""The facilitator's roster: one attendee account per line, ``account_id[,region][,attendee]``.

A header line (``account_id,...``), blank lines and ``#`` comments are allowed. Every problem is
reported with its line number, all at once, before any account is touched.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from secml.errors import SecmlError, short, utf8_text

# ASCII digits only: \d would also take full-width or Arabic-Indic digits, which AWS refuses.
ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
# us-east-1, eu-central-2, ap-southeast-4, us-gov-west-1, cn-north-1, us-isob-east-1, ...
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
MAX_REPORTED = 10


@dataclass(frozen=True)
class Target:
    account_id: str
    region: str
    attendee: str = ""
    line: int = 0

    @property
    def key(self) -> str:
        return f"{self.account_id}/{self.region}"


def parse_roster(text: str, *, default_region: str | None, source: str = "roster") -> list[Target]:
    targets: list[Target] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    first_row = True
    for lineno, line in enumerate(text.splitlines(), start=1):
        # line by line, so a stray quote cannot swallow the lines after it
        row = next(csv.reader([line]), [])
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        header = first_row and cells[0].lower().replace(" ", "_") in ("account_id", "account")
        first_row = False
        if header:
            continue  # the header may follow comments and blank lines
        if len(cells) > 3:
            expected = "expected account_id[,region][,attendee]"
            errors.append(f"line {lineno}: {expected}, got {short(row, 80)}")
            continue
        account = cells[0]
        region = (cells[1] if len(cells) > 1 else "") or (default_region or "")
        attendee = cells[2] if len(cells) > 2 else ""
        if not ACCOUNT_RE.match(account):
            hint = ""
            if account.isdigit() and not account.isascii():
                hint = " (it has non-ASCII digits, e.g. full-width ones: type them again)"
            elif account.isdigit() and len(account) < 12:
                hint = " (a spreadsheet may have dropped leading zeros)"
            errors.append(f"line {lineno}: account id {short(account)} is not 12 digits{hint}")
            continue
        if not region:
            errors.append(f"line {lineno}: no region and no --region / AWS_REGION default")
            continue
        if not REGION_RE.match(region):
            errors.append(f"line {lineno}: {short(region)} is not a region name like eu-west-1")
            continue
        first = seen.get((account, region))
        if first is not None:
            errors.append(f"line {lineno}: {account} in {region} is already on line {first}")
            continue
        seen[(account, region)] = lineno
        targets.append(Target(account, region, attendee, lineno))
    if errors:
        more = f"; and {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        raise SecmlError(f"{source}: " + "; ".join(errors[:MAX_REPORTED]) + more)
    if not targets:
        raise SecmlError(f"{source}: no accounts in the roster")
    return targets


def read_roster(path: Path, *, default_region: str | None) -> list[Target]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SecmlError(f"cannot read roster {path}: {exc.strerror or exc}") from None
    text = utf8_text(raw, path, hint=' (Excel\'s plain "CSV" is Windows-1252: save as "CSV UTF-8")')
    return parse_roster(text, default_region=default_region, source=str(path))

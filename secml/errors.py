"""Errors the CLI turns into one clear line and a non-zero exit (design.md, "Bad input")."""


class SecmlError(Exception):
    """A problem the user can fix (bad argument, missing file, port in use, ...)."""


def short(value: object, limit: int = 40) -> str:
    """A bad value for an error line: its repr, or for a long one a prefix of about ``limit``
    characters and its length; an error line quotes a bad value, it does not reprint 20 KB."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def utf8_text(raw: bytes, source: object, *, first_line: int = 1, hint: str = "") -> str:
    """``raw`` as text (a leading byte-order mark dropped, as Excel's "CSV UTF-8" writes one),
    or one line naming the line that is not UTF-8 (``first_line``: the line ``raw`` starts on)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = first_line + raw.count(b"\n", 0, exc.start)
        raise SecmlError(f"{source} line {line}: not UTF-8 text{hint}") from None

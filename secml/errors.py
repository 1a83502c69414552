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

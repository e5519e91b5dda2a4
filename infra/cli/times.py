"""Times given on the command line."""

from __future__ import annotations

from datetime import UTC, datetime

import typer


def moment(text: str | None) -> datetime | None:
    """RFC 3339 (a trailing Z is fine); a time without an offset is taken as UTC."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an RFC 3339 time: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

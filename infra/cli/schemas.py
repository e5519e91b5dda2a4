"""`orderflow schemas`: the committed JSON Schemas of the events."""

from __future__ import annotations

import typer

from infra.cli.console import console

schemas_cli = typer.Typer(help="Event JSON Schemas.", no_args_is_help=True)


@schemas_cli.command("export")
def schemas_export() -> None:
    """Rewrite the committed JSON Schemas (schemas/json/) from the pydantic models; refused
    when the code breaks a committed version (declare a new version with an upcaster)."""
    from infra.eventstore.envelopes import declared_upcasters
    from schemas.export import IncompatibleSchemas, export

    try:
        written = export(upcasters=declared_upcasters())
    except IncompatibleSchemas as refused:
        for problem in refused.problems:
            console.print(f"[red]{problem}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    for path in written:
        console.print(f"wrote {path}")

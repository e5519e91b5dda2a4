"""`orderflow dead-letters`: events a projection could not apply, parked until retried."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from infra.bootstrap import read_side
from infra.cli import read_models
from infra.cli.console import console
from infra.cli.tables import JsonOption, emit
from infra.settings import Settings
from projections import dead_letters

dead_letters_cli = typer.Typer(help="Events projections could not apply.", no_args_is_help=True)


@dead_letters_cli.command("list")
def dead_letters_list(
    all_: Annotated[bool, typer.Option("--all", help="Include resolved ones.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Events parked because a projection could not apply them (and those held behind)."""
    columns = ("id", "projection", "position", "event", "aggregate", "status", "attempts", "error")
    rows = read_models.letter_rows(Settings(), all_, as_json, console.print)
    emit(columns, rows, as_json=as_json)


@dead_letters_cli.command("show")
def dead_letters_show(letter_id: Annotated[int, typer.Argument(help="The id.")]) -> None:
    """One dead letter with its error and its envelope, as JSON."""
    letter = dead_letters.find(read_side(Settings()).store, letter_id)
    if letter is None:
        raise typer.BadParameter(f"no dead letter {letter_id}")
    print(
        json.dumps(
            {
                "id": letter.id,
                "projection": letter.projection,
                "status": letter.status,
                "attempts": letter.attempts,
                "error": letter.error,
                "envelope": letter.envelope.model_dump(mode="json"),
            },
            indent=2,
        )
    )


@dead_letters_cli.command("retry")
def dead_letters_retry(
    letter_id: Annotated[int | None, typer.Argument(help="Retry this one's aggregate.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every parked event.")] = False,
) -> None:
    """Apply parked events again, per aggregate and in order, once the fault is fixed."""
    if (letter_id is None) == (not all_):
        raise typer.BadParameter("name one dead letter, or pass --all")
    ids = None if all_ else [letter_id or 0]
    released, parked = read_models.retry_letters(Settings(), ids, console.print)
    console.print(f"released {released}, still parked {parked}")
    if parked:
        raise typer.Exit(1)

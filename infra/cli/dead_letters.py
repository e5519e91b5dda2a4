"""`orderflow dead-letters`: events a projection could not apply, parked until retried."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from infra.bootstrap import read_side
from infra.cli.console import console
from infra.cli.tables import JsonOption, emit
from infra.settings import Settings
from projections import dead_letters
from projections.catalog import BY_NAME, REPORTING

dead_letters_cli = typer.Typer(help="Events projections could not apply.", no_args_is_help=True)


@dead_letters_cli.command("list")
def dead_letters_list(
    all_: Annotated[bool, typer.Option("--all", help="Include resolved ones.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Events parked because a projection could not apply them (and those held behind)."""
    columns = ("id", "projection", "position", "event", "aggregate", "status", "attempts", "error")
    rows: list[tuple[object, ...]] = [
        (
            letter.id,
            letter.projection,
            letter.position,
            letter.event_type,
            letter.aggregate_id,
            letter.status,
            letter.attempts,
            letter.error if as_json else letter.error[:80],
        )
        for letter in dead_letters.listing(read_side(Settings()).store, include_resolved=all_)
    ]
    from infra.cli.reporting import reporting_letters

    rows += [  # the reports' letters live in ClickHouse: no id, `retry --all` takes them
        (
            None,
            REPORTING.name,
            letter.position,
            letter.event_type,
            str(letter.aggregate_id),
            letter.status,
            letter.attempts,
            letter.error if as_json else letter.error[:80],
        )
        for letter in reporting_letters(Settings(), console.print)
    ]
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
    settings = Settings()
    released, parked = dead_letters.retry(
        read_side(settings).store, BY_NAME, None if all_ else [letter_id or 0]
    )
    if all_:
        from infra.cli.reporting import retry_reporting_letters

        more_released, more_parked = retry_reporting_letters(settings)
        released, parked = released + more_released, parked + more_parked
    console.print(f"released {released}, still parked {parked}")
    if parked:
        raise typer.Exit(1)

"""The log's statements for a scan shared by two processes, each reading its own share.

The server selects a share (share 0: the aggregates whose id is below `CUT`, share 1: the
others; ids are spread evenly, being random or hashes), so neither process receives,
parses or forwards the other's rows. Comparing ids is the cheapest test per row for the
server (testing the id's lowest bit through `uuid_send` cost it more). Both scans are
bounded by one position read before either starts (`until`): appends hold the events
table's EXCLUSIVE lock until they commit, so positions commit in order and every scan
that sees `until` sees the same rows up to it, whatever its snapshot.

An envelope names its predecessor in the whole log, which a share alone does not show.
The log has few holes (the positions drawn by appends that rolled back), so the pass asks
for them once, before the processes part (`LogShares`): a count of the positions up to
`until` says whether there is any hole (an index-only scan, half the cost of finding
them), and only then one narrow index scan finds the positions whose predecessor is not
the position before them, with that predecessor (`gaps`); every other position's
predecessor is the one before it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from psycopg.sql import SQL, Composable, Composed, Identifier

from infra.eventstore.log_rows import columns

SHARES = 2
CUT = UUID(int=1 << 127)  # share 0 below, share 1 from here


@dataclass(frozen=True)
class LogShares:
    """What both shares of one pass need, read once before the processes part: the
    bound, the log's holes up to it, and the server's event-id function (None: none)."""

    until: int
    gaps: Mapping[int, int] = field(default_factory=dict)
    event_id_function: Composable | None = None


def share_query(
    share: int, schema: str, table: str, event_id_function: Composable | None
) -> Composed:
    """A share's rows after %(after)s up to %(until)s, in log order (`log_rows.LogRow`);
    %(cut)s is `CUT`."""
    if share not in range(SHARES):
        raise ValueError(f"no share {share} of {SHARES}")
    return SQL(
        "SELECT {columns} FROM {schema}.{table} "
        "WHERE notification_id > %(after)s AND notification_id <= %(until)s "
        "AND originator_id {side} %(cut)s ORDER BY notification_id"
    ).format(
        columns=columns(event_id_function),
        schema=Identifier(schema),
        table=Identifier(table),
        side=SQL("<" if share == 0 else ">="),
    )


def count_query(schema: str, table: str) -> Composed:
    """How many positions there are after %(after)s up to %(until)s: when as many as the
    numbers in between, the log has no hole there."""
    return SQL(
        "SELECT count(*) FROM {schema}.{table}"
        " WHERE notification_id > %(after)s AND notification_id <= %(until)s"
    ).format(schema=Identifier(schema), table=Identifier(table))


def gaps_query(schema: str, table: str) -> Composed:
    """(position, predecessor) of the positions after %(after)s up to %(until)s whose
    predecessor in the log is not the position before them (the first one's is `after`)."""
    return SQL(
        "SELECT notification_id, previous FROM ("
        " SELECT notification_id,"
        " lag(notification_id, 1, %(after)s::bigint) OVER (ORDER BY notification_id) AS previous"
        " FROM {schema}.{table}"
        " WHERE notification_id > %(after)s AND notification_id <= %(until)s"
        ") AS log WHERE previous <> notification_id - 1"
    ).format(schema=Identifier(schema), table=Identifier(table))


def predecessors(positions: Iterator[int], gaps: Mapping[int, int]) -> Iterator[int]:
    """Each position's predecessor in the whole log, given the log's `gaps`."""
    return (gaps.get(position, position - 1) for position in positions)

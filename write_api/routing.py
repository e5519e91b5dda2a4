"""Commands on a contended SKU are decided by one process (ADR 0028).

With several write processes, two group appenders deciding commands on one hot SKU
overtake each other's batches (ADR 0016). The process whose appender saw that happen
(infra/eventstore/contention.py) sends such a command to the SKU's owner, the process
holding slot `id mod N` (infra/routing/slots.py), whose appender decides it in its batch
like its own; the answer, or the domain's refusal, comes back. It is an affinity, not the
guarantee: every append stays optimistic, so a command decided anywhere is decided right.
An owner that cannot be reached leaves the command to this process; one that was sent the
command and did not answer is a transient failure (503), since it may have decided it.

An order's lines may name SKUs of different owners: it goes to the owner of its contended
SKU with the lowest id, so every process sends the same order to the same place, and the
order's other SKUs stay optimistic. Commands naming an order, not a SKU, are not routed:
which SKUs they touch is known only once the order is loaded."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands.bus import CommandBus, Reply
from commands.ports import CommandContext, IdempotencyClaim
from domain.base_error import OrderFlowError
from domain.inventory import InventoryItem
from infra.bootstrap import WriteSide
from infra.eventstore.contention import Contention
from infra.eventstore.group_commit import AppenderClosed
from infra.observability.metrics import COMMANDS_ROUTED
from infra.routing.calls import Link, Lost, Serving, Unsent, serve
from infra.routing.slots import DIRECTORY_ENV, Slot, claim_slot
from schemas.commands import Command, PlaceOrder
from schemas.responses import Accepted
from write_api.answers import answer_as

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forwarded:
    """A command as its owner decides it: what the edge would have handed the bus."""

    command: Command
    context: CommandContext
    model: type[Accepted]
    status: int
    claim: IdempotencyClaim | None


@dataclass(frozen=True)
class Refused:
    """An OrderFlowError, sent as its class and state: their constructors differ."""

    kind: type[OrderFlowError]
    args: tuple[Any, ...]
    state: dict[str, Any]

    def error(self) -> OrderFlowError:
        error = self.kind.__new__(self.kind)
        error.args = self.args
        vars(error).update(self.state)
        return error


@dataclass(frozen=True)
class Undecided:
    """The owner is shutting down and did not decide it: the sender does."""


@dataclass(frozen=True)
class Failed:
    """The owner failed for another reason, transient or not known to be final."""

    why: str


def skus_of(command: Command) -> list[str]:
    if isinstance(command, PlaceOrder):
        return [line.sku for line in command.lines]
    sku = getattr(command, "sku", None)
    return [sku] if isinstance(sku, str) else []


class Router:
    def __init__(self, bus: CommandBus, contention: Contention, slot: Slot) -> None:
        self._bus = bus
        self._contention = contention
        self._slot = slot
        self._links: dict[int, Link] = {}
        self._server: Serving | None = None
        self.counts: Counter[str] = Counter()  # forwarded, received, fallback, lost

    @property
    def slot(self) -> int:
        return self._slot.index

    def owner(self, command: Command) -> int | None:
        """The slot of the process that decides the command, if not this one."""
        contended = sorted(
            item
            for sku in skus_of(command)
            if self._contention.contended(item := InventoryItem.create_id(sku))
        )
        if not contended:
            return None
        for item in contended:
            self._contention.still_contended(item)
        owner = contended[0].int % self._slot.count
        return None if owner == self._slot.index else owner

    async def answer(
        self,
        command: Command,
        context: CommandContext,
        model: type[Accepted],
        status: int,
        claim: IdempotencyClaim | None,
    ) -> Reply:
        """The bus's answer to the command, given by the process that owns it."""
        owner = self.owner(command)
        if owner is not None:
            try:
                outcome = await self._link(owner).call(
                    Forwarded(command, context, model, status, claim)
                )
            except Unsent as unreachable:
                self._count("fallback")
                log.debug("deciding here, the owner is not reachable: %s", unreachable)
            except Lost:
                self._count("lost")
                raise
            else:
                self._count("forwarded")
                if isinstance(outcome, Reply):
                    return outcome
                if isinstance(outcome, Refused):
                    raise outcome.error()
                if isinstance(outcome, Failed):
                    raise Lost(f"the owning process failed: {outcome.why}")
                if not isinstance(outcome, Undecided):  # only that one is decided here
                    raise TypeError(f"the owner answered {outcome!r}")
        return await self._bus.answer_async(command, context, answer_as(model, status), claim)

    async def decide(self, request: object) -> object:
        """The owner's side: decides a command another process sent; never raises."""
        assert isinstance(request, Forwarded)
        self._count("received")
        try:
            return await self._bus.answer_async(
                request.command,
                request.context,
                answer_as(request.model, request.status),
                request.claim,
            )
        except OrderFlowError as refused:
            return Refused(type(refused), refused.args, dict(vars(refused)))
        except AppenderClosed:
            return Undecided()
        except Exception as error:
            log.warning("a routed command failed: %s", error)
            return Failed(f"{type(error).__name__}: {error}")

    def _link(self, slot: int) -> Link:
        if slot not in self._links:
            self._links[slot] = Link(self._slot.socket(slot))
        return self._links[slot]

    def _count(self, way: str) -> None:
        self.counts[way] += 1
        COMMANDS_ROUTED.labels(way).inc()

    async def start(self) -> None:
        self._server = await serve(self._slot.socket(self._slot.index), self.decide)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        for link in self._links.values():
            await link.close()


def router_for(write_side: WriteSide) -> Router | None:
    """This process's router, when it is one of several write processes that route
    (`write-api --workers N` made the directory of their slots) and group commit is on."""
    directory = os.environ.get(DIRECTORY_ENV)
    settings = write_side.settings
    appender = write_side.appender
    if not directory or settings.write_workers < 2 or not settings.write_routing:
        return None
    if appender is None or appender.contention is None:
        return None
    slot = claim_slot(Path(directory), settings.write_workers)
    return None if slot is None else Router(write_side.bus, appender.contention, slot)

"""The command bus: one handler call per attempt, bounded conflict retries; the appender
answers an Idempotency-Key's earlier answer.

It speaks results, not a transport: `handle` returns the handler's result and the
position of the command's last event; `answer` takes the edge's renderer of that result
and returns the edge's Answer, kept with the events when the command carries an
Idempotency-Key and given back as it was when the key comes again.

An event loop calls `answer_async`: with an appender that decides in its own thread (a
`Submitter`, the group commit) it awaits the appender's future, with no worker thread in
between; with one that decides in the caller's thread, it runs `answer` in a worker
thread."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import anyio.to_thread
from opentelemetry import trace

from commands import metrics
from commands.errors import ConcurrencyConflict, IdempotencyKeyReused
from commands.handlers import HANDLERS
from commands.ports import (
    Answer,
    Appender,
    CommandContext,
    Decision,
    IdempotencyClaim,
    IdempotencyStore,
    StoredAnswer,
    Submitter,
    UnitOfWork,
)
from commands.results import Result
from commands.trace_context import span
from schemas.commands import Command

tracer = trace.get_tracer("orderflow.commands")
T = TypeVar("T")
Render = Callable[[Result], Answer]


@dataclass(frozen=True)
class Committed:
    """A command's result and the position of its last event (its consistency token)."""

    result: Result
    position: int


@dataclass(frozen=True)
class Reply:
    """The edge's answer to a command and the position of its last event; `replayed` when
    an Idempotency-Key matched an earlier command, whose answer this is."""

    answer: Answer
    position: int
    replayed: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 30
    first_backoff_s: float = 0.002
    max_backoff_s: float = 0.05

    def backoff(self, attempt: int) -> float:
        """Full jitter: spreads writers that collided so they don't collide again."""
        return random.uniform(0, min(self.max_backoff_s, self.first_backoff_s * 2**attempt))


class CommandBus:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        idempotency: IdempotencyStore,
        retry: RetryPolicy | None = None,
        appender: Appender | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._retry = retry or RetryPolicy()
        self._appender: Appender = appender or OneAtATime(unit_of_work, idempotency)
        self._submitter = self._appender if isinstance(self._appender, Submitter) else None

    def handle(self, command: Command, context: CommandContext) -> Committed:
        """Runs the command; its result and position."""
        handler = HANDLERS[type(command)]
        with traced(command), timed(command):
            decision = Decision(lambda uow: handler(command, uow), context.traced())
            outcome = self._commit(decision)
        assert not isinstance(outcome, StoredAnswer)  # no claim, nothing to replay
        return Committed(*outcome)

    def answer(
        self,
        command: Command,
        context: CommandContext,
        render: Render,
        claim: IdempotencyClaim | None = None,
    ) -> Reply:
        """Runs the command and answers what `render` makes of its result, kept for the
        claim in the transaction of the events; or the answer kept for the claim before."""
        with traced(command), timed(command) as timing:
            decision = _rendered(command, context, render, claim)
            return self._reply(command, self._commit(decision), timing)

    async def answer_async(
        self,
        command: Command,
        context: CommandContext,
        render: Render,
        claim: IdempotencyClaim | None = None,
    ) -> Reply:
        """`answer`, awaited in an event loop."""
        if self._submitter is None:
            answer = partial(self.answer, command, context, render, claim)
            return await anyio.to_thread.run_sync(answer)
        with traced(command), timed(command) as timing:
            decision = _rendered(command, context, render, claim)
            return self._reply(command, await self._commit_async(self._submitter, decision), timing)

    @staticmethod
    def _reply(
        command: Command, outcome: tuple[Answer, int] | StoredAnswer, timing: metrics.Timing
    ) -> Reply:
        if isinstance(outcome, StoredAnswer):
            timing.outcome = "replayed"
            metrics.IDEMPOTENCY_HITS.labels(type(command).__name__).inc()
            return Reply(outcome.answer, outcome.position, replayed=True)
        return Reply(*outcome)

    def _commit(self, decision: Decision[T]) -> tuple[T, int] | StoredAnswer:
        for attempt in range(self._retry.attempts):
            try:
                return self._appender.append(decision)
            except ConcurrencyConflict:
                if attempt + 1 < self._retry.attempts:
                    time.sleep(self._retry.backoff(attempt))
        raise self._gave_up()

    async def _commit_async(
        self, submitter: Submitter, decision: Decision[T]
    ) -> tuple[T, int] | StoredAnswer:
        for attempt in range(self._retry.attempts):
            try:
                return await asyncio.wrap_future(submitter.submit(decision))
            except ConcurrencyConflict:
                if attempt + 1 < self._retry.attempts:
                    await asyncio.sleep(self._retry.backoff(attempt))
        raise self._gave_up()

    def _gave_up(self) -> ConcurrencyConflict:
        return ConcurrencyConflict(
            f"gave up after {self._retry.attempts} attempts: the aggregates kept changing"
        )


def traced(command: Command) -> AbstractContextManager[trace.Span]:
    return span(tracer, f"command {type(command).__name__}")


def timed(command: Command) -> metrics.Timing:
    return metrics.timed_command(type(command).__name__)


def _rendered(
    command: Command, context: CommandContext, render: Render, claim: IdempotencyClaim | None
) -> Decision[Answer]:
    """The command's decision for an edge: its handler's result, rendered as the Answer
    kept for the claim."""
    handler = HANDLERS[type(command)]
    return Decision(lambda uow: render(handler(command, uow)), context.traced(), claim)


def earlier(idempotency: IdempotencyStore, claim: IdempotencyClaim) -> StoredAnswer | None:
    """The answer kept for this claim's key, if any; IdempotencyKeyReused when it was
    kept for another request."""
    stored = idempotency.find(claim.scope, claim.key)
    if stored is not None and stored.fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused(claim.key)
    return stored


@dataclass(frozen=True)
class OneAtATime:
    """Each command in its own unit of work and its own transaction, after a look for its
    claim's earlier answer."""

    unit_of_work: Callable[[], UnitOfWork]
    idempotency: IdempotencyStore

    def append(self, decision: Decision[T]) -> tuple[T, int] | StoredAnswer:
        if decision.claim is not None and (stored := earlier(self.idempotency, decision.claim)):
            return stored
        uow = self.unit_of_work()
        decided = decision.decide(uow)
        return decided, uow.commit(decision.context, decision.kept(decided))

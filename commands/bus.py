"""The command bus: idempotency, one handler call per attempt, bounded conflict retries."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from commands import metrics
from commands.errors import ConcurrencyConflict, IdempotencyKeyReused
from commands.handlers import HANDLERS
from commands.ports import (
    Appender,
    CommandContext,
    Decision,
    IdempotencyClaim,
    IdempotencyStore,
    UnitOfWork,
)
from schemas.commands import Command

tracer = trace.get_tracer("orderflow.commands")


@dataclass(frozen=True)
class Reply:
    """What a command answered; `replayed` when an Idempotency-Key matched an earlier one."""

    status_code: int
    body: dict[str, Any]
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
        self._idempotency = idempotency
        self._retry = retry or RetryPolicy()
        self._appender: Appender = appender or OneAtATime(unit_of_work)

    def handle(
        self,
        command: Command,
        context: CommandContext,
        status_code: int = 200,
        claim: IdempotencyClaim | None = None,
    ) -> Reply:
        name = type(command).__name__
        with tracer.start_as_current_span(f"command {name}"), metrics.timed_command(name) as timing:
            reply = self._handle(command, context.traced(), status_code, claim)
            if reply.replayed:
                timing.outcome = "replayed"
                metrics.IDEMPOTENCY_HITS.labels(type(command).__name__).inc()
            return reply

    def _handle(
        self,
        command: Command,
        context: CommandContext,
        status_code: int = 200,
        claim: IdempotencyClaim | None = None,
    ) -> Reply:
        handler = HANDLERS[type(command)]
        for attempt in range(self._retry.attempts):
            if claim is not None and (earlier := self._replay(claim)) is not None:
                return earlier
            decision = Decision(
                lambda uow: handler(command, uow).model_dump(mode="json"),
                context,
                claim,
                status_code,
            )
            try:
                body, position = self._appender.append(decision)
            except ConcurrencyConflict:
                if attempt + 1 < self._retry.attempts:
                    time.sleep(self._retry.backoff(attempt))
                continue
            return Reply(status_code, {**body, "position": position})
        raise ConcurrencyConflict(
            f"gave up after {self._retry.attempts} attempts: the aggregates kept changing"
        )

    def _replay(self, claim: IdempotencyClaim) -> Reply | None:
        stored = self._idempotency.find(claim.scope, claim.key)
        if stored is None:
            return None
        if stored.fingerprint != claim.fingerprint:
            raise IdempotencyKeyReused(claim.key)
        return Reply(stored.status_code, stored.body, replayed=True)


@dataclass(frozen=True)
class OneAtATime:
    """Each command in its own unit of work and its own transaction."""

    unit_of_work: Callable[[], UnitOfWork]

    def append(self, decision: Decision) -> tuple[dict[str, Any], int]:
        uow = self.unit_of_work()
        body = decision.decide(uow)
        return body, uow.commit(decision.context, decision.answer(body))

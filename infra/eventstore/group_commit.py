"""Group commit: one appender thread per process takes every command that arrived while
the previous transaction committed, decides them one after another against the
aggregates in memory (group_batch.py) and appends all their events in one transaction.

What the batch must not change about a command: its answer and its events are what it
would have had alone, after the commands before it; a command that is refused fails
alone and appends nothing; its idempotent answer is stored in the same transaction as
its events. When the batch's transaction hits a conflict because another process appended
to some of its aggregates since the batch caught up, the batch catches up and takes back
the commands whose decisions rest on what changed: each command that looked up one of
those aggregates, or one that a command taken back before it looked up (so that each
aggregate's events stay in the order they were decided). The others stand, since
nothing they read changed; the ones taken back are decided again, after them, and all
are appended together. That is what one at a time would have done with the commands
taken back arriving last, which they may, since none was answered yet. A batch
overtaken ATTEMPTS times, or a conflict on an Idempotency-Key, runs its commands one at
a time, so only the one that conflicts fails (and is retried by the bus).

Idempotency-Keys are claimed optimistically: a command is decided without first looking
for its key, because the key's row, inserted with the events, is unique. A repeated key
makes the batch's insert fail, and the one-at-a-time path, which looks first, answers it
from the store. A command the domain refuses, or one that changes nothing, appends no
row to collide with, so its key is looked up before that answer is given: the first
answer stands, whatever the aggregates hold now."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Recording

from commands.bus import earlier
from commands.errors import ConcurrencyConflict
from commands.ports import Appender, Decision, IdempotencyStore, IdempotentAnswer, StoredAnswer
from commands.trace_context import span
from infra.eventstore.contention import Contention
from infra.eventstore.event_store import OrderFlowApplication, events_decoded, with_metadata
from infra.eventstore.group_batch import Batch
from infra.eventstore.group_jobs import Job, Outcome, Plan
from infra.eventstore.log_follower import LogFollower
from infra.observability import metrics
from infra.observability.tracing import link_to, tracer

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 4  # appends of one batch overtaken by other processes before going one at a time
# after a batch was overtaken, batches keep copies of what they load for this long: with
# another process appending to the same aggregates, the next conflict is likely
CONTENDED_FOR_S = 10.0


class AppenderClosed(RuntimeError):
    pass


class GroupAppender:
    def __init__(
        self,
        app: OrderFlowApplication,
        alone: Appender,
        idempotency: IdempotencyStore,
        max_batch: int = 256,
        keep_copies: bool | None = None,
        contention: Contention | None = None,
    ) -> None:
        """keep_copies: whether batches copy what they load, to undo a command taken back
        from the copy; None: for CONTENDED_FOR_S after another process overtook a batch.
        contention: told which aggregates another process overtook a batch on."""
        self._app = app
        self._alone = alone  # for the commands of a batch that hit a conflict
        self._idempotency = idempotency
        self._max_batch = max_batch
        self._follower = LogFollower(app)
        self._keep_copies = keep_copies
        self._contended_until = 0.0  # monotonic time
        self.contention = contention
        self._queue: SimpleQueue[Job | None] = SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def append(self, decision: Decision[T]) -> tuple[T, int] | StoredAnswer:
        return self.submit(decision).result()

    def submit(self, decision: Decision[T]) -> Future[tuple[T, int] | StoredAnswer]:
        if self._closed:
            raise AppenderClosed("the write side is shutting down")
        job = Job(decision)
        self._queue.put(job)
        return cast(Future[tuple[T, int] | StoredAnswer], job.future)

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with self._app.appending_on_one_connection():
            self._serve()

    def _serve(self) -> None:
        while (first := self._queue.get()) is not None:
            jobs, closing = [first], False
            while len(jobs) < self._max_batch:
                try:
                    queued = self._queue.get_nowait()
                except Empty:
                    break
                if queued is None:
                    closing = True
                    break
                jobs.append(queued)
            # a job whose caller gave up before now (a cancelled await) is not decided;
            # once running, its future cannot be cancelled, and it is always settled
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            try:
                if jobs:
                    self._batch(jobs)
            except BaseException as error:  # the thread must outlive any one batch
                log.exception("group commit batch failed")
                for job in jobs:
                    if not job.future.done():
                        job.settle(error)
            if closing:
                break
        while True:  # whatever arrived after close() is answered, not left waiting
            try:
                late = self._queue.get_nowait()
            except Empty:
                return
            if late is not None and late.future.set_running_or_notify_cancel():
                late.settle(AppenderClosed("the write side is shutting down"))

    def run_batch(self, decisions: list[Decision[Any]]) -> list[Outcome | BaseException]:
        """Decides and commits these as one batch, in this thread: for tests that choose a
        batch's shape. Each decision's outcome, or what it raised."""
        jobs = [Job(d) for d in decisions]
        if not jobs:
            return []
        for job in jobs:
            job.future.set_running_or_notify_cancel()
        self._batch(jobs)
        return [j.future.exception() or j.future.result() for j in jobs]

    def _batch(self, jobs: list[Job]) -> None:
        read_before = events_decoded()
        # What other processes appended, into the cached aggregates; not read when this
        # process knows nothing else was appended up to its own last append, a moment ago.
        caught_up = not self._follower.current()
        if caught_up:
            self._follower.catch_up()
        copies = self._keep_copies
        if copies is None:
            copies = time.monotonic() < self._contended_until
        batch = Batch(self._app.repository, keep_before=copies)
        plan = Plan(shared_read=(events_decoded() - read_before) / len(jobs))
        if not self._decide(batch, jobs, plan, caught_up):
            # A refusal, or a cached aggregate read but not appended to, may come from a
            # stale cache, and no conflict would say so: the batch is decided again, in
            # the same order, once caught up (nothing was answered yet).
            batch.abandoned()
            self._follower.forget_current()
            self._batch(jobs)
            return
        self._store(batch, plan)
        for job in plan.later:  # answered by the first of its key, if that one committed
            job.settle(self._earlier_or(job, ConcurrencyConflict("the same key, in one batch")))
        for job in plan.alone:
            self._one_at_a_time(job)

    def _decide(self, batch: Batch, jobs: list[Job], plan: Plan, caught_up: bool) -> bool:
        """Decides the jobs in order, after what `plan` accepted already. False if one was
        refused on a cache that may be stale (nothing is answered then)."""
        for job in jobs:
            claim = job.decision.claim
            key = (claim.scope, claim.key) if claim else None
            if key is not None and key in plan.claimed:
                plan.later.append(job)
                continue
            read_before = events_decoded()
            try:
                decided = batch.decide(job.decision.decide)
            except Exception as refused:
                if not caught_up:
                    return False
                job.settle(self._earlier_or(job, refused))
                continue
            finally:
                metrics.EVENTS_READ.observe(events_decoded() - read_before + plan.shared_read)
            job.decided, job.events, job.looked = decided.value, decided.events, decided.looked
            if not job.events:
                plan.alone.append(job)  # nothing to append: whatever it answers, it does so alone
                continue
            if key is not None:
                plan.claimed.add(key)
            plan.accepted.append(job)
        return caught_up or not batch.relies_on_unwritten()

    def _store(self, batch: Batch, plan: Plan) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            if not plan.accepted:
                return
            try:
                recordings = self._append(batch, plan.accepted)
            except IntegrityError as conflict:
                if attempt < ATTEMPTS and self._app.orderflow_recorder.version_taken(conflict):
                    self._contended_until = time.monotonic() + CONTENDED_FOR_S
                    # Another process appended to some of the batch's aggregates since the
                    # batch caught up: only the commands that relied on them are decided
                    # again, after catching up; the others stand as they were decided.
                    self._decide(batch, self._overtaken(batch, plan), plan, caught_up=True)
                    continue
                batch.abandoned()  # or a key used before: one at a time, looked up first
                for job in plan.accepted:
                    self._one_at_a_time(job)
                return
            except BaseException as error:
                batch.abandoned()
                for job in plan.accepted:
                    job.settle(error)
                return
            batch.committed()
            self._follower.appended([r.notification.id for r in recordings])
            metrics.EVENTS_APPENDED.inc(len(recordings))
            start = 0
            for job in plan.accepted:
                own = recordings[start : start + len(job.events)]
                start += len(job.events)
                job.settle((job.decided, max(r.notification.id for r in own)))
            return

    def _append(self, batch: Batch, accepted: list[Job]) -> list[Recording[UUID]]:
        events: list[Any] = []
        answers: list[tuple[IdempotentAnswer, int]] = []
        for job in accepted:
            metadata = job.decision.context.metadata()
            events.extend(with_metadata(e, metadata) for e in job.events)
            if (answer := job.decision.kept(job.decided)) is not None:
                answers.append((answer, len(events) - 1))
        links = [link for job in accepted if (link := link_to(job.decision.context.traceparent))]
        with span(tracer, "group commit", links=links) as current:
            current.set_attribute("commands", len(accepted))
            return self._app.save_decided(events, batch.aggregates, answers=answers)

    def _overtaken(self, batch: Batch, plan: Plan) -> list[Job]:
        """After a conflict on a version: catches up, and takes out of `plan.accepted`
        (and back out of the batch) every command that looked up an aggregate another
        process appended to, or one that a command taken out before it looked up. The
        others keep their decisions: nothing they rest on changed. The ones taken out, in
        order, are returned to be decided again."""
        out: list[Job] = []

        def withdraw(changed: Collection[UUID] | None) -> None:
            tainted = set(changed) if changed is not None else None
            if self.contention is not None:
                ours = batch.aggregate_ids
                self.contention.overtaken(ours if tainted is None else ours & tainted)
            for job in plan.accepted:
                if tainted is None or not tainted.isdisjoint(job.looked):
                    out.append(job)
                    if tainted is not None:
                        tainted |= job.looked
            plan.take_out(out)
            stale = changed if changed is not None else batch.aggregate_ids
            batch.withdraw((e for job in out for e in job.events), stale)

        self._follower.catch_up(withdraw)
        metrics.GROUP_COMMIT_REDECIDED.inc(len(out))
        return out

    def _earlier_or(self, job: Job, outcome: BaseException) -> Outcome | BaseException:
        """The answer kept for the job's claim before, if there is one; else `outcome`."""
        claim = job.decision.claim
        if claim is None:
            return outcome
        try:
            return earlier(self._idempotency, claim) or outcome
        except Exception as error:  # the key reused for another request, or the store down
            return error

    def _one_at_a_time(self, job: Job) -> None:
        self._follower.forget_current()  # its append is not followed: read before the next
        try:
            outcome: Outcome | BaseException = self._alone.append(job.decision)
        except Exception as error:
            outcome = error
        job.settle(outcome)

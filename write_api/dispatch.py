"""Turns one HTTP request's headers into what the bus needs, and its reply into HTTP."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse

from commands.bus import CommandBus, Reply
from commands.ports import CommandContext, IdempotencyClaim
from domain.base_error import OrderFlowError
from schemas.auth import Principal
from schemas.commands import Command
from schemas.responses import Accepted
from write_api.answers import answer_as, respond
from write_api.routing import Router

_IF_MATCH = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class BadHeader(OrderFlowError):
    code = "bad-header"


def expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    match = _IF_MATCH.match(if_match.strip())
    if match is None:
        raise BadHeader(f'If-Match must be an entity tag like "3", got {if_match!r}')
    return int(match.group(1))


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Same request, same fingerprint, whatever the JSON's key order or spacing."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Dispatcher:
    bus: CommandBus
    router: Router | None  # with several write processes: commands on contended SKUs
    correlation_id: str
    idempotency_key: str | None
    if_match: int | None
    request_fingerprint: str

    async def __call__(
        self, command: Command, who: Principal, model: type[Accepted], status_code: int = 200
    ) -> JSONResponse:
        """Sends the command; answers its result as `model`, with this status."""
        if self.if_match is not None:
            command = command.model_copy(update={"expected_version": self.if_match})
        claim = None
        if self.idempotency_key is not None:
            claim = IdempotencyClaim(who.sub, self.idempotency_key, self.request_fingerprint)
        context = CommandContext(correlation_id=self.correlation_id, actor=who.sub)
        reply: Reply
        if self.router is not None:
            reply = await self.router.answer(command, context, model, status_code, claim)
        else:
            reply = await self.bus.answer_async(
                command, context, answer_as(model, status_code), claim
            )
        return respond(reply)


def _optional_string(pattern: str) -> Callable[[dict[str, Any]], None]:
    """A header is absent or a string, never JSON null: describe it as the string it is."""

    def describe(schema: dict[str, Any]) -> None:
        schema.pop("anyOf", None)
        schema.update(type="string", pattern=pattern)

    return describe


async def dispatcher(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="1 to 255 visible ASCII characters; the same key and body answers "
            "the first answer again (Idempotent-Replayed: true), another body is 422",
            json_schema_extra=_optional_string("^[!-~]{1,255}$"),
        ),
    ] = None,
    if_match: Annotated[
        str | None,
        Header(
            description='The version the command expects, as the ETag gave it ("3"; W/"3" '
            "and 3 are accepted; * means any): 412 when it is stale, 400 when malformed",
            json_schema_extra=_optional_string('^(\\*|(W/)?"?[0-9]{1,18}"?)$'),
        ),
    ] = None,
) -> Dispatcher:
    if idempotency_key is not None and not _KEY.match(idempotency_key):
        raise BadHeader("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return Dispatcher(
        bus=request.app.state.write_side.bus,
        router=request.app.state.router,
        correlation_id=request.state.correlation_id,
        idempotency_key=idempotency_key,
        if_match=expected_version(if_match),
        request_fingerprint=fingerprint(request.method, request.url.path, await request.body()),
    )

"""Turns one HTTP request's headers into what the bus needs, and its reply into HTTP."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
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
        return fingerprint_of(method, path, json.loads(body or b"null"))
    except ValueError:
        return _hashed(method, path, body.decode("utf-8", "replace"))


def fingerprint_of(method: str, path: str, parsed: Any) -> str:
    """`fingerprint` of a body already parsed as JSON."""
    return _hashed(method, path, json.dumps(parsed, sort_keys=True, separators=(",", ":")))


def _hashed(method: str, path: str, canonical: str) -> str:
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def url_path(request: Request) -> str:
    """`request.url.path`, without building the URL (a fiftieth of a command's CPU): the
    scope's path escaped as Starlette's URL escapes it. The two differ only for a path
    holding a tab or a line break, which no route that sends a command accepts."""
    path: str = request.scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


async def request_fingerprint(request: Request) -> str:
    """`fingerprint` of the request, from the JSON FastAPI parsed for the body parameter
    when it did (Starlette keeps it), rather than parsing the body a second time."""
    body = await request.body()
    if not body:
        return fingerprint(request.method, url_path(request), body)
    try:
        parsed = await request.json()
    except ValueError:
        return fingerprint(request.method, url_path(request), body)
    return fingerprint_of(request.method, url_path(request), parsed)


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


def _optional_header(title: str, pattern: str, description: str) -> dict[str, Any]:
    """An optional header as FastAPI describes a declared one, absent or a string."""
    schema = {"description": description, "type": "string", "pattern": pattern, "title": title}
    return {
        "name": title.lower(),
        "in": "header",
        "required": False,
        "schema": schema,
        "description": description,
    }


# Read by `dispatcher` itself and described here: FastAPI's parsing of declared header
# parameters was a twentieth of a command's CPU (ADR 0016, session 25).
COMMAND_HEADERS = (
    _optional_header(
        "Idempotency-Key",
        "^[!-~]{1,255}$",
        "1 to 255 visible ASCII characters; the same key and body answers the first answer "
        "again (Idempotent-Replayed: true), another body is 422",
    ),
    _optional_header(
        "If-Match",
        '^(\\*|(W/)?"?[0-9]{1,18}"?)$',
        'The version the command expects, as the ETag gave it ("3"; W/"3" and 3 are '
        "accepted; * means any): 412 when it is stale, 400 when malformed",
    ),
)


async def dispatcher(request: Request) -> Dispatcher:
    headers = request.headers
    idempotency_key = headers.get("idempotency-key")
    if idempotency_key is not None and not _KEY.match(idempotency_key):
        raise BadHeader("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return Dispatcher(
        bus=request.app.state.write_side.bus,
        router=request.app.state.router,
        correlation_id=request.state.correlation_id,
        idempotency_key=idempotency_key,
        if_match=expected_version(headers.get("if-match")),
        request_fingerprint=await request_fingerprint(request),
    )

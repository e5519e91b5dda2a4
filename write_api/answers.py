"""The write API's answers to commands: the bus hands back a command's result, and the
route says which response model and status answer it.

The answer's body is the response model's fields but `position`, each taken from the
result's attribute of the same name. It is what the bus keeps for an Idempotency-Key
(the position is added on the way out, the first time and on a replay alike)."""

from __future__ import annotations

from functools import cache

from pydantic_core import to_jsonable_python
from starlette.responses import JSONResponse

from commands.bus import Render, Reply
from commands.ports import Answer
from commands.results import Result
from schemas.responses import Accepted


@cache  # one renderer per route
def answer_as(model: type[Accepted], status: int = 200) -> Render:
    fields = [name for name in model.model_fields if name != "position"]

    def render(result: Result) -> Answer:
        return Answer(status, to_jsonable_python({name: getattr(result, name) for name in fields}))

    return render


def body_of(reply: Reply) -> dict[str, object]:
    """The answer's body with the consistency token."""
    return {**reply.answer.body, "position": reply.position}


def respond(reply: Reply) -> JSONResponse:
    body = body_of(reply)
    headers = {"ETag": f'"{body["version"]}"'}
    if reply.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=reply.answer.status, headers=headers)

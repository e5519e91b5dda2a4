"""The routes that send commands: their contract, and a lean path for requests in order.

FastAPI's generic work per request (solving the dependency tree with its cache keys,
checking the content type through `email.message`, validating the body through a
`TypeAdapter`, its bookkeeping around the endpoint) was about a tenth of a command's CPU
at one client (ADR 0016, session 26). A command route gives the endpoint its arguments
itself when the request is in order: a JSON body its model accepts, path parameters of
their types, a bearer token known already whose role the route allows, and no dependency
overrides. Any other request goes FastAPI's own way, so every refusal (400, 401, 403,
422...) is FastAPI's and the error handlers' exactly as before, and the OpenAPI document
is built from the same declarations."""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from infra.http.security import Requirement
from write_api.dispatch import COMMAND_HEADERS, dispatcher

Endpoint = Callable[..., Awaitable[Response]]


class CommandRoute(APIRoute):
    """A route that sends a command through `dispatcher`: its OpenAPI operation lists the
    command headers that `dispatcher` reads, and requests in order take the lean path."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        extra = copy.deepcopy(kwargs.pop("openapi_extra", None) or {})
        extra["parameters"] = [*extra.get("parameters", []), *copy.deepcopy(COMMAND_HEADERS)]
        super().__init__(path, endpoint, openapi_extra=extra, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        plan = LeanCall.of(self)
        if plan is None:
            return standard

        async def handle(request: Request) -> Response:
            arguments = await plan.arguments(request)
            if arguments is None:
                return await standard(request)
            return await plan.endpoint(**arguments)

        return handle


def _is_json(content_type: str | None) -> bool:
    """Plain `application/json` only; FastAPI also takes other `+json` types, which then
    go its own way."""
    return content_type is not None and (
        content_type.partition(";")[0].strip().lower() == "application/json"
    )


@dataclass(frozen=True)
class LeanCall:
    """How to call one command endpoint without FastAPI's dependency solving."""

    endpoint: Endpoint
    path: tuple[tuple[str, TypeAdapter[Any]], ...]
    body_name: str
    body_model: type[BaseModel]
    principal_name: str
    requirement: Requirement
    dispatcher_name: str

    @staticmethod
    def of(route: APIRoute) -> LeanCall | None:
        """The plan for an async endpoint taking path parameters, one body model, the
        principal of a `Requirement` and the dispatcher, and nothing else; None for any
        other shape (it then always goes FastAPI's way)."""
        dependant = route.dependant
        if (
            not inspect.iscoroutinefunction(route.endpoint)
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or len(dependant.body_params) != 1
            or len(dependant.dependencies) != 2
            or dependant.request_param_name
            or dependant.response_param_name
            or dependant.background_tasks_param_name
        ):
            return None
        hints = typing.get_type_hints(route.endpoint, include_extras=True)
        body = dependant.body_params[0].name
        model = hints.get(body)
        needs = {d.call: d.name for d in dependant.dependencies}
        requirement = next((c for c in needs if isinstance(c, Requirement)), None)
        if (
            not (isinstance(model, type) and issubclass(model, BaseModel))
            or requirement is None
            or needs[requirement] is None
            or needs.get(dispatcher) is None
        ):
            return None
        return LeanCall(
            endpoint=route.endpoint,
            path=tuple((p.name, TypeAdapter(hints[p.name])) for p in dependant.path_params),
            body_name=body,
            body_model=model,
            principal_name=str(needs[requirement]),
            requirement=requirement,
            dispatcher_name=str(needs[dispatcher]),
        )

    async def arguments(self, request: Request) -> dict[str, Any] | None:
        """The endpoint's arguments as FastAPI would solve them, or None when the request
        is not in order (or FastAPI's dependencies are overridden)."""
        if request.app.dependency_overrides or not _is_json(request.headers.get("content-type")):
            return None
        who = self.requirement.admitted(request)
        if who is None or not await request.body():
            return None
        try:
            parsed = await request.json()  # kept by Starlette: FastAPI's way reuses it
            values = {
                name: adapter.validate_python(request.path_params[name])
                for name, adapter in self.path
            }
            values[self.body_name] = self.body_model.model_validate(parsed)
        except (ValueError, KeyError):  # ValidationError and JSONDecodeError are ValueErrors
            return None
        values[self.principal_name] = who
        values[self.dispatcher_name] = await dispatcher(request)
        return values

"""What both APIs' `/ready` share: one attempt per dependency, and one way to say which
dependencies are down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

from infra.http.problems import problem


def check(probe: Callable[[], object]) -> str:
    """ "ok", or "down: <error>", after one attempt: the library retries its reads ten
    times (a retry decorator keeps the undecorated method as `__wrapped__`), too long for
    a probe."""
    once = getattr(probe, "__wrapped__", None)
    try:
        if once is not None:
            once.__get__(getattr(probe, "__self__", None))()
        else:
            probe()
    except Exception as down:
        return f"down: {type(down).__name__}"
    return "ok"


def answer(checks: dict[str, str], **extra: Any) -> dict[str, Any] | JSONResponse:
    """Ready with every check, or a 503 problem naming each dependency that is down."""
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        detail = "; ".join(f"{name}: {checks[name]}" for name in failing)
        return problem(503, "not-ready", "Not ready", detail, headers={"Retry-After": "1"})
    return {"status": "ready", "checks": checks, **extra}

"""The servers' own loggers (uvicorn's access log among them) follow ORDERFLOW_LOG_LEVEL,
which main() sets on the root logger: at WARNING, no line per request."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from infra.cli.servers import _config
from infra.settings import Settings

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def restored_levels() -> Iterator[None]:
    loggers = [logging.getLogger(), *map(logging.getLogger, UVICORN_LOGGERS)]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.parametrize(("root", "access_logged"), [("WARNING", False), ("INFO", True)])
def test_the_access_log_follows_the_configured_level(root: str, access_logged: bool) -> None:
    logging.getLogger().setLevel(root)
    _config(object(), Settings(jwt_secret="x" * 40), 8000)
    assert logging.getLogger("uvicorn.access").isEnabledFor(logging.INFO) is access_logged
    assert logging.getLogger("uvicorn.error").isEnabledFor(logging.WARNING)

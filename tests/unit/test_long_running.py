import logging
import threading

from infra.kafka.consumer import group_for
from infra.retrying import run_until_stopped
from infra.settings import Settings

ALL = ["orders", "inventory", "customer_orders", "reservations"]


def test_processes_running_every_projection_share_one_group() -> None:
    settings = Settings(projector_group="g")
    assert group_for(settings, list(reversed(ALL)), ALL) == "g"


def test_a_process_running_a_subset_gets_a_group_of_its_own() -> None:
    settings = Settings(projector_group="g")
    assert group_for(settings, ["orders", "inventory"], ALL) == "g-inventory-orders"
    assert group_for(settings, ["orders"], ALL) != group_for(settings, ["inventory"], ALL)


def test_a_failing_step_is_called_again_until_it_returns() -> None:
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("broker away")

    run_until_stopped(step, threading.Event(), logging.getLogger("t"), "test")
    assert len(calls) == 3


def test_a_stop_during_backoff_ends_the_loop() -> None:
    stop = threading.Event()

    def step() -> None:
        stop.set()
        raise ConnectionError("broker away")

    run_until_stopped(step, stop, logging.getLogger("t"), "test")
    assert stop.is_set()

"""Every projection OrderFlow maintains, by name."""

from projections.customer_orders import customer_orders
from projections.inventory import inventory
from projections.orders import orders
from projections.read_model import SqlReadModel
from projections.refunds_due import refunds_due
from projections.reporting import ReportingReadModel, reporting
from projections.reservations import reservations

ALL: tuple[SqlReadModel, ...] = (orders, inventory, customer_orders, reservations, refunds_due)
BY_NAME: dict[str, SqlReadModel] = {p.name: p for p in ALL}

# ClickHouse (chDB embedded), applied by its own runner: projections/reporting_projector.py
REPORTING: ReportingReadModel = reporting
NAMES: tuple[str, ...] = (*BY_NAME, REPORTING.name)

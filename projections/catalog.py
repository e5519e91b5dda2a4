"""Every projection OrderFlow maintains, by name."""

from projections.customer_orders import customer_orders
from projections.inventory import inventory
from projections.orders import orders
from projections.projection import Projection

ALL: tuple[Projection, ...] = (orders, inventory, customer_orders)
BY_NAME: dict[str, Projection] = {p.name: p for p in ALL}

"""ordersync: one truthful ledger of orders held by several vendor systems."""

__version__ = "0.1.0"

__all__ = ["__version__"]

"""Vendor adapters shipped with ordersync; each registers under ``ordersync.adapters``."""

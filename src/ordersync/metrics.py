"""The daemon's metrics in Prometheus' text format (prometheus-client, a registry of our own).

Counters and histograms are fed as things happen, through the vendor-agnostic observer the
daemon and :class:`~ordersync.http.VendorHttp` call (:class:`Metrics` implements
:class:`~ordersync.daemon.Observer`). The gauges of orders and actions by state are read from
the ledger when scraped (:class:`LedgerCollector`); :meth:`Metrics.render` therefore runs on
the thread of the ledger connection it reads (the status server's own), never on the event
loop.

=============================================== ==========================================
``ordersync_polls_total{vendor,outcome}``        polls ended, ``outcome`` ok or error
``ordersync_orders{vendor,state}``               orders in the ledger by common state
``ordersync_actions{vendor,state}``              outbox actions by state
``ordersync_request_duration_seconds``           each HTTP attempt, ``{vendor,method}``
``ordersync_retries_total{vendor}``              HTTP attempts made again after a failure
``ordersync_rate_limit_waits_total{vendor}``     retries the vendor asked to wait for (429)
``ordersync_errors_total{vendor,error_class}``   HTTP attempts that failed, by error class
``ordersync_last_success_timestamp_seconds``     ``{vendor}``: the last successful poll
``ordersync_last_poll_timestamp_seconds``        ``{vendor}``: the last poll, whatever its end
``ordersync_heartbeat_timestamp_seconds``        the last heartbeat (loops making progress)
=============================================== ==========================================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .ledger import LedgerAPI

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class LedgerCollector(Collector):
    """Orders and actions by state, counted in the ledger at each scrape."""

    def __init__(self, ledger: LedgerAPI, instances: Iterable[str]) -> None:
        self.ledger = ledger
        self.instances = list(instances)

    def collect(self) -> Iterator[Metric]:
        orders = GaugeMetricFamily("ordersync_orders", "Orders in the ledger by common state",
                                   labels=["vendor", "state"])
        for count in self.ledger.summary():
            orders.add_metric([count.instance, count.state.value], count.orders)
        actions = GaugeMetricFamily("ordersync_actions", "Outbox actions by state",
                                    labels=["vendor", "state"])
        for instance in self.instances:
            for state, number in sorted(self.ledger.outbox.counts(instance).items()):
                actions.add_metric([instance, state], number)
        yield orders
        yield actions


class Metrics:
    """The registry and what feeds it (see the module docstring for every metric)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.polls = Counter("ordersync_polls", "Polls ended, by outcome",
                             ["vendor", "outcome"], registry=registry)
        self.duration = Histogram("ordersync_request_duration_seconds",
                                  "HTTP attempts to vendors, by method",
                                  ["vendor", "method"], registry=registry)
        self.retries = Counter("ordersync_retries", "HTTP attempts made again after a failure",
                               ["vendor"], registry=registry)
        self.rate_limit_waits = Counter("ordersync_rate_limit_waits",
                                        "Retries the vendor asked to wait for (rate limited)",
                                        ["vendor"], registry=registry)
        self.errors = Counter("ordersync_errors", "HTTP attempts that failed, by error class",
                              ["vendor", "error_class"], registry=registry)
        self.last_success = Gauge("ordersync_last_success_timestamp_seconds",
                                  "When the last successful poll ended", ["vendor"],
                                  registry=registry)
        self.last_poll = Gauge("ordersync_last_poll_timestamp_seconds",
                               "When the last poll ended", ["vendor"], registry=registry)
        self.heartbeat = Gauge("ordersync_heartbeat_timestamp_seconds",
                               "When the daemon's loops last made progress (heartbeat written)",
                               registry=registry)

    def watch_ledger(self, ledger: LedgerAPI, instances: Iterable[str]) -> None:
        """Count orders and actions in ``ledger`` at each scrape."""
        self.registry.register(LedgerCollector(ledger, instances))

    def render(self) -> bytes:
        """The text exposition format; reads the ledger (call it on that ledger's thread)."""
        return generate_latest(self.registry)

    # the observer (ordersync.daemon.Observer)

    def request_done(self, vendor: str, method: str, duration_s: float,
                     error_class: str | None) -> None:
        self.duration.labels(vendor, method).observe(duration_s)
        if error_class is not None:
            self.errors.labels(vendor, error_class).inc()

    def retrying(self, vendor: str, *, rate_limited: bool) -> None:
        self.retries.labels(vendor).inc()
        if rate_limited:
            self.rate_limit_waits.labels(vendor).inc()

    def poll_done(self, vendor: str, now: float, error_class: str | None) -> None:
        self.polls.labels(vendor, "error" if error_class else "ok").inc()
        self.last_poll.labels(vendor).set(now)
        if error_class is None:
            self.last_success.labels(vendor).set(now)

    def heartbeat_written(self, now: float) -> None:
        self.heartbeat.set(now)

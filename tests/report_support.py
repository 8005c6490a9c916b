"""A ledger for the report's tests, built by real syncs of three simulators (and a fourth
vendor that goes down), with every kind of exception planted through the vendors' own
controls: :func:`report_site` yields a :class:`Site`.

Time is the test's :class:`~tests.conftest.FakeClock`: the simulators, the service and the
report all read it, so "two days later" costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ordersync.actions import enqueue
from ordersync.config import Config, load_config
from ordersync.daemon import Service
from ordersync.ledger import Ledger
from ordersync.registry import adapter as find_adapter
from ordersync.report import build_report
from ordersync_adapters.fotoware.simulator import FotowareSimulator
from ordersync_adapters.pwinty.simulator import PwintySimulator
from ordersync_adapters.reseller.simulator import ResellerSimulator
from tests.cli_support import toml_str

DAY = 86400.0
ENV = {"RPT_FW_SECRET": "fw-secret", "RPT_PWINTY_KEY": "pw-key", "RPT_RS_SECRET": "rs-secret",
       "RPT_RS_PASSWORD": "rs-password"}
MISSING_PHOTO = "https://images.example.com/missing-print.jpg"   # the simulator 404s it


def config_toml(ledger: Path, fw: str, prints: str, resell: str, gone: str,
                report: str = "") -> str:
    """Four instances: fw (Fotoware), prints (Pwinty), resell (reseller), gone (Fotoware)."""
    fast = ("rate_limit = { requests = 1000, per_s = 1 }\nbackoff_base_s = 0.05\n"
            "timeout_s = 3.0\n")
    fotoware = ('adapter = "fotoware"\nclient_id = "ordersync"\n'
                'client_secret_env = "RPT_FW_SECRET"\n' + fast)
    return (
        f"[ledger]\npath = {toml_str(ledger)}\n\n[report]\n{report}\n"
        f"[vendors.fw]\nbase_url = {toml_str(fw)}\n{fotoware}"
        "max_attempts = 1\naction_max_attempts = 1\n\n"
        f"[vendors.prints]\nadapter = \"pwinty\"\nbase_url = {toml_str(prints)}\n"
        f'merchant_id = "sim-merchant"\napi_key_env = "RPT_PWINTY_KEY"\n{fast}\n'
        f"[vendors.resell]\nadapter = \"reseller\"\nbase_url = {toml_str(resell)}\n"
        'client_key = "sim-client-key"\nclient_secret_env = "RPT_RS_SECRET"\n'
        'username = "api@reseller.example"\npassword_env = "RPT_RS_PASSWORD"\n'
        f"{fast}\n"
        f"[vendors.gone]\nbase_url = {toml_str(gone)}\n{fotoware}"
    )


@dataclass
class Site:
    """Running simulators, the configuration (a file too, for the CLI) and the clock."""

    fw: FotowareSimulator
    prints: PwintySimulator
    resell: ResellerSimulator
    gone: FotowareSimulator
    gone_port: int
    config: Config
    config_path: Path
    clock: object
    planted: dict[str, str] = field(default_factory=dict)

    @property
    def specs(self) -> dict:
        return {name: find_adapter(v.adapter) for name, v in self.config.vendors.items()}

    async def sync(self) -> None:
        """One ``sync --once`` of every vendor (actions pushed too), on the fake clock."""
        async with Service(self.config, sleep=self.clock.sleep, clock=self.clock,
                           handle_signals=False) as service:
            await service.run_once()

    def ledger(self) -> Ledger:
        return Ledger(self.config.ledger_path)

    def report(self, **options) -> dict:
        ledger = self.ledger()
        try:
            return build_report(ledger, self.specs, self.clock(), self.config.report,
                                **options)
        finally:
            ledger.close()

    async def queue(self, instance: str, kind: str, order: str, **params) -> int:
        [(action, _)] = await enqueue(self.config, kind, [(instance, order)], params,
                                      clock=self.clock)
        return action.id

    async def gone_down(self) -> None:
        await self.gone.stop()

    async def gone_back(self) -> None:
        await self.gone.start(port=self.gone_port)


@asynccontextmanager
async def report_site(tmp_path: Path, clock, report: str = "") -> AsyncIterator[Site]:
    """Simulators on loopback, a configuration over them, and a first sync at ``clock()``."""
    fw = FotowareSimulator(orders=30, clock=clock)
    prints = PwintySimulator(orders=30, clock=clock, open_share=0.5, download_delay_s=5.0)
    resell = ResellerSimulator(orders=12, clock=clock)
    gone = FotowareSimulator(orders=3, seed=7, clock=clock, client_secret=ENV["RPT_FW_SECRET"])
    fw.client_secret = ENV["RPT_FW_SECRET"]
    prints.api_key = ENV["RPT_PWINTY_KEY"]
    resell.client_secret, resell.password = ENV["RPT_RS_SECRET"], ENV["RPT_RS_PASSWORD"]
    urls = [await fw.start(), await prints.start() + "/v2.2", await resell.start(),
            await gone.start()]
    path = tmp_path / "ordersync.toml"
    path.write_text(config_toml(tmp_path / "ledger.db", *urls, report=report), encoding="utf-8")
    site = Site(fw, prints, resell, gone, int(urls[3].rsplit(":", 1)[1]),
                load_config(path, ENV), path, clock)
    try:
        await site.sync()
        yield site
    finally:
        for sim in (fw, prints, resell, gone):
            await sim.stop()


async def plant_everything(site: Site) -> dict[str, str]:
    """Plant one cause of every kind; returns the key each is expected under.

    Stuck: a pending Fotoware order (found once it has waited past stuck_after_s).
    Expiring: a reseller draft created 4 days ago (drafts live 7 days).
    Problem: a Pwinty draft given a photo whose URL is missing at the vendor.
    Uncertain and dead: two Fotoware approvals whose requests fail once each.
    Down: the fourth vendor's server stops answering for three polls.
    Unreadable: a Pwinty order served with a price beyond 64 bits (stored flagged).
    """
    clock = site.clock
    pending = [i for i in site.fw.order_ids() if site.fw.get_order(i)["state"] == "pending"]
    draft = str(site.resell.add_order(status="Draft", items=1, at=clock() - 4 * DAY))
    photo_order = site.prints.add_order("NotYetSubmitted", recipientName="Photo Customer")
    await site.sync()            # the new draft and print order reach the ledger
    photo = await site.queue("prints", "add_photo", photo_order, photos=[
        {"type": "4x6", "url": MISSING_PHOTO, "copies": 1}])
    site.fw.faults.add("status", method="APPROVE", status=503, retry_after=None)
    uncertain = await site.queue("fw", "approve", pending[0])
    site.fw.faults.add("status", method="GET", path_prefix=f"/fotoweb/orders/{pending[1]}",
                       status=503, retry_after=None)
    dead = await site.queue("fw", "approve", pending[1], comment="ok")
    unreadable = site.prints.order_ids()[1]            # on the first page every poll reads
    site.prints.plant(unreadable, json.dumps({**site.prints.get_order(unreadable),
                                              "price": 2**64}).encode())
    await site.gone_down()
    await site.sync()            # actions pushed (uncertain, dead, the photo added)
    clock.advance(10)            # the photo's download fails at the vendor
    await site.sync()
    await site.sync()            # three failed polls of "gone" in a row
    keys = {
        "stuck": f"stuck:fw:{pending[2]}",
        "expiring": f"expiring:resell:{draft}",
        "problem": f"problem:prints:{photo_order}",
        "uncertain": f"uncertain:{uncertain}",
        "action_dead": f"action_dead:{dead}",
        "vendor_down": "vendor_down:gone",
        "unreadable": f"unreadable:prints:{unreadable}",
    }
    site.planted.update(keys, stuck_order=pending[2], draft=draft, photo_order=photo_order,
                        photo_action=str(photo), unreadable_order=unreadable)
    return keys

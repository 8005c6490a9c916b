"""An adapter defined only in the tests (tests/thirdparty: TicketDesk, registered by its
own entry point like any third party's) gets working commands, validation errors, chains
and outbox behaviour from its declarations alone, with no change to ordersync."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.cli_support import arun_cli, json_data, toml_str

THIRD_PARTY = Path(__file__).parent / "thirdparty"
FW_SECRET_ENV = "ORDERSYNC_TEST_TD_FW_SECRET"


async def test_a_third_party_adapter_gets_commands_checks_and_chains(write_config, tmp_path):
    sys.path.insert(0, str(THIRD_PARTY))
    try:
        from ordersync_ticketdesk import TicketDeskSimulator
    finally:
        sys.path.remove(str(THIRD_PARTY))
    sim = TicketDeskSimulator()
    base_url = await sim.start()
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(THIRD_PARTY),
                                                        os.environ.get("PYTHONPATH")])),
           FW_SECRET_ENV: "fw-secret-not-used"}
    config = write_config(
        f"[ledger]\npath = {toml_str(tmp_path / 'ledger.db')}\n\n"
        f"[vendors.desk]\nadapter = \"ticketdesk\"\nbase_url = {toml_str(base_url)}\n\n"
        "[vendors.fw]\nadapter = \"fotoware\"\nbase_url = \"https://fotoweb.example.com/\"\n"
        f"client_id = \"x\"\nclient_secret_env = \"{FW_SECRET_ENV}\"\n")
    attachment = tmp_path / "screenshot.png"
    attachment.write_bytes(b"\x89PNG" + b"x" * 96)
    details = tmp_path / "details.json"
    details.write_text('{"customer": "Ada"}', encoding="utf-8")
    try:
        async def cli(*args: str):
            return await arun_cli("--config", str(config), *args, env=env)

        helped = await cli("tickets", "--help")
        synced = await cli("sync", "--once", "--vendor", "desk")
        opened = await cli(
            "tickets", "open", "desk", "--title", "Printer on fire", "--priority", "1",
            "--weight", "2.5", "--urgent", "--attachment", str(attachment), "--from",
            str(details), "--label", "team=ops", "--label", "team=web", "--line-label",
            "0:colour=red", "--channel", "phone", "--wait", "--json")
        refusals = [await cli(*args) for args in (
            ("tickets", "open", "desk", "--title", "x", "--priority", "0"),
            ("tickets", "open", "desk", "--title", "x", "--weight", "heavy"),
            ("tickets", "open", "desk", "--title", "x", "--label", "team"),
            ("tickets", "open", "desk", "--title", "x", "--line-label", "first:a=b"),
            ("tickets", "open", "desk", "--title", "x", "--attachment", str(tmp_path / "no")),
            ("tickets", "open", "desk", "--title", "x", "--channel", "fax"),
            ("tickets", "open", "desk", "--priority", "2"),
            ("tickets", "open", "fw", "--title", "x"),
            ("submit", "fw:1", "--note", "for the reviewer"),
        )]
        chained = await cli("chain", "desk", "--step", "open_ticket title=Chained urgent=yes",
                            "--step", "add_note text=first text=second",
                            "--step", "submit note=ready", "--step", "close reason=done",
                            "--wait", "--json")
        no_id = await cli("chain", "desk", "--step", "open_ticket title='no id given'",
                          "--step", "close reason=done", "--wait", "--json")
        listed = await cli("actions", "list", "--vendor", "desk", "--json")
    finally:
        await sim.stop()
    assert helped.returncode == 0, helped
    assert "tickets: queued actions (open, note, close)." in helped.stdout, helped
    assert synced.returncode == 0, synced
    assert opened.returncode == 0, opened
    [action] = json_data(opened)
    [(verb, tid, body)] = [e for e in sim.effects if e[1] == action["result"]["order_id"]]
    assert (verb, body) == ("OPEN", {
        "title": "Printer on fire", "priority": 1, "weight": 2.5, "urgent": True,
        "attachment": 100, "details": {"customer": "Ada"}, "labels": {"team": ["ops", "web"]},
        "line_labels": {"0": {"colour": "red"}}, "channel": "phone"})
    assert [(r.returncode, r.error_lines) for r in refusals] == [(2, [f"ordersync: error: {m}"])
                                                                  for m in (
        "--priority: must be at least 1, got 0",
        "--weight: 'heavy' is not a number",
        "--label: 'team' is not NAME=VALUE",
        "--line-label: 'first:a=b' is not N:NAME=VALUE",
        f"--attachment: {tmp_path / 'no'}: no such file",
        "argument --channel: invalid choice: 'fax' (choose from 'mail', 'phone')"
        " (see `ordersync tickets open --help`)",
        "the following arguments are required: --title (see `ordersync tickets open --help`)",
        "fw (fotoware) has no `tickets open`; its commands: approve, reject, update, submit",
        "--note: fw (fotoware) submit does not take it",
    )]
    assert chained.returncode == 0, chained
    links = json_data(chained)
    assert [(a["kind"], a["state"]) for a in links] == [
        ("open_ticket", "succeeded"), ("add_note", "succeeded"), ("submit", "succeeded"),
        ("close", "succeeded")]
    tid = links[0]["result"]["order_id"]
    assert [(v, b) for v, t, b in sim.effects if t == tid] == [
        ("OPEN", {"title": "Chained", "priority": 3, "urgent": True, "channel": "mail"}),
        ("NOTES", {"text": ["first", "second"]}), ("SUBMIT", {"note": "ready"}),
        ("CLOSE", {"reason": "done"})]
    assert sim.tickets[int(tid)]["status"] == "closed"
    opened_blind, waits = json_data(no_id)
    assert no_id.returncode == 1 and opened_blind["state"] == "uncertain", no_id
    assert "its id was not learnt" in opened_blind["last_error"]
    listed_waits = [a for a in json_data(listed) if a["id"] == waits["id"]]
    assert [(a["state"], a["waiting"]) for a in listed_waits] == [
        ("pending", f"waits for #{opened_blind['id']} (open_ticket, uncertain)")]
    assert len(json_data(listed)) == 7 and len(sim.tickets) == 3   # nothing doubled
    assert not [e for e in sim.effects if e[0] == "CLOSE" and e[1] not in (tid,)]

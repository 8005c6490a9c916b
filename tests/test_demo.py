"""``ordersync demo`` pushes a chain for each adapter that declares one (create, then act on
the order the create made), through the outbox, and every link succeeds."""

from __future__ import annotations

import json

from tests.cli_support import run_many


def test_the_demo_pushes_a_reseller_and_a_pwinty_chain(tmp_path):
    [result] = run_many([(["demo", "--orders", "8", "--json", "--dir", str(tmp_path / "d")],
                          None)], cwd=tmp_path)
    assert result.returncode == 0, result
    actions = json.loads(result.stdout)["actions"]
    assert {a["state"] for a in actions} == {"succeeded"}, actions
    for create, rest in (("create_draft", ["add_item", "add_item", "checkout"]),
                         ("create", ["add_photos"])):
        made = [a for a in actions if a["kind"] == create and a["created_order"]][-1]
        chain = actions[actions.index(made):][:1 + len(rest)]
        assert [a["kind"] for a in chain] == [create, *rest]
        assert {a["order"] for a in chain} == {made["order"]}
        assert made["order"].endswith(":" + made["created_order"])

"""README.md tells the truth: CI runs exactly its test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"))


def test_readme_opens_with_the_demo_and_the_test_command():
    demo, tests = commands()[:2]
    assert demo.endswith("ordersync demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands()[1] in ci


def test_example_configuration_is_valid():
    from ordersync.config import load_config

    config = load_config(ROOT / "config" / "ordersync.example.toml",
                         {"FOTOWARE_CLIENT_SECRET": "x" * 8, "PWINTY_API_KEY": "y" * 8,
                          "RESELLER_CLIENT_SECRET": "z" * 8, "RESELLER_API_PASSWORD": "w" * 8})
    assert {v.adapter for v in config.vendors.values()} == {"fotoware", "pwinty", "reseller"}


def test_the_command_table_names_every_declared_command():
    from ordersync.cli_actions import declared_commands

    table = (ROOT / "README.md").read_text(encoding="utf-8")

    def listed(path: tuple[str, ...]) -> bool:
        if len(path) > 1:
            return " ".join(path) in table
        return re.search(r"ordersync (\S+\\\|)*" + re.escape(path[0]) + r"\b", table) is not None

    assert [" ".join(path) for path in declared_commands() if not listed(path)] == []

"""Every command, subcommand and argument of ``ordersync`` explains itself (cf. sqlite-utils'
test_docs.py), and ``ordersync COMMAND --help`` works for each without any configuration."""

from __future__ import annotations

import argparse

import pytest

from ordersync.cli import build_parser
from tests.cli_support import CliResult, run_many


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help_text=None):
    """(command path, parser, help given by the parent) for the root and every subcommand."""
    yield path, parser, help_text
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name), helps.get(name))


PARSERS = list(walk(build_parser()))
COMMANDS = [path for path, _, _ in PARSERS if path]


def undocumented(parser: argparse.ArgumentParser) -> list[str]:
    """What the checks below would complain about, for checking the checks."""
    found = []
    for path, sub, help_text in walk(parser):
        if path and not (help_text and sub.description):
            found.append(" ".join(path))
        found += [f"{' '.join(path)} {a.dest}" for a in sub._actions
                  if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
                  and not a.help]
    return found


def test_the_walk_finds_what_is_missing():
    parser = argparse.ArgumentParser(prog="x", description="x")
    commands = parser.add_subparsers()
    ok = commands.add_parser("ok", help="fine", description="fine")
    ok.add_argument("--quiet", action="store_true")
    nested = commands.add_parser("nested", help="fine", description="fine").add_subparsers()
    nested.add_parser("deep")
    assert undocumented(parser) == ["ok quiet", "nested deep"]
    assert undocumented(build_parser()) == []


def test_the_tree_has_the_commands_of_the_design():
    assert {"run", "sync", "orders", "demo", "simulate"} <= {p[0] for p in COMMANDS}
    assert ("orders", "list") in COMMANDS and ("orders", "show") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help_and_description(path):
    _, parser, help_text = next(p for p in PARSERS if p[0] == path)
    assert help_text and help_text.strip(), f"`ordersync {' '.join(path)}` has no help="
    assert parser.description and parser.description.strip(), (
        f"`ordersync {' '.join(path)}` has no description=")


def test_the_program_has_a_description():
    assert build_parser().description.strip()


ARGUMENTS = [
    (path, action)
    for path, parser, _ in PARSERS
    for action in parser._actions
    if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
]


@pytest.mark.parametrize(
    "path,action", ARGUMENTS,
    ids=[" ".join((*p, a.option_strings[-1] if a.option_strings else a.dest))
         for p, a in ARGUMENTS],
)
def test_every_argument_has_help(path, action):
    name = "/".join(action.option_strings) or action.dest
    assert action.help and action.help.strip() and action.help != argparse.SUPPRESS, (
        f"`ordersync {' '.join(path)}` argument {name} has no help=")


def test_choices_are_listed_in_help():
    """An argument with fixed choices either shows them or names them in its help."""
    for path, action in ARGUMENTS:
        if action.choices and not action.metavar:
            continue  # argparse prints {a,b,c} itself
        if action.choices:
            assert all(str(c) in action.help for c in action.choices), (path, action.dest)


@pytest.fixture(scope="module")
def help_results(tmp_path_factory) -> dict[tuple[str, ...], CliResult]:
    folder = tmp_path_factory.mktemp("help")  # no configuration anywhere near
    paths = [(), *COMMANDS]
    results = run_many([([*path, "--help"], {"ORDERSYNC_CONFIG": str(folder / "none.toml")})
                        for path in paths], cwd=folder)
    return dict(zip(paths, results, strict=True))


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=["ordersync", *map(" ".join, COMMANDS)])
def test_help_runs(path, help_results):
    result = help_results[path]
    assert result.returncode == 0, result
    assert result.stderr == "", result
    assert result.stdout.startswith(f"usage: {' '.join(('ordersync', *path))}"), result
    _, parser, _ = next(p for p in PARSERS if p[0] == path)
    assert " ".join(parser.description.split()[:4]) in " ".join(result.stdout.split())


def test_version():
    [result] = run_many([(["--version"], None)])
    assert result.returncode == 0, result
    assert result.stdout.startswith("ordersync "), result

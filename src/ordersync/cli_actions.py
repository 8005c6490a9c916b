"""Action commands, built from the adapters' declarations (:class:`~ordersync.contract.ActionSpec`).

Each command path any installed adapter declares (``approve``, ``photos add`` ...) becomes
one command. Several adapters may declare the same path (``submit``): the command takes the
union of their parameters, and the instance of each target decides which declaration checks
the values; a parameter that adapter does not take is refused. Errors name the option
(``--copies: must be at least 1``), mapped from the parameter the core names.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

import orjson

from .cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    Interrupted,
    UsageError,
    action_json,
    group,
    known_instance,
    parse_order_ref,
    print_json,
    run_interruptible,
    say,
    seconds,
)
from .config import Config
from .constants import FIELDS_MAX_BYTES
from .contract import ActionSpec, Param, ParamType
from .errors import FileUnreadable, ParameterError
from .files import read_text
from .model import ActionState
from .registry import adapters

QUEUE_NOTE = (" The action is checked, queued in the ledger's outbox and performed by the"
              " daemon or the next `sync --once` (or at once with --wait).")


def declared_commands() -> dict[tuple[str, ...], list[ActionSpec]]:
    """Every command path the installed adapters declare, with its declarations."""
    found: dict[tuple[str, ...], list[ActionSpec]] = {}
    for _, spec in sorted(adapters().items()):
        for action in spec.actions:
            if action.path:
                found.setdefault(action.path, []).append(action)
    return found


def merged_params(specs: list[ActionSpec]) -> dict[str, Param]:
    """The union of the declarations' parameters (the first declaration of a name wins)."""
    params: dict[str, Param] = {}
    for spec in specs:
        for param in spec.params:
            params.setdefault(param.name, param)
    return params


def add_action_commands(commands) -> None:
    groups: dict[str, Any] = {}
    found = declared_commands()
    for path, specs in found.items():
        text = "; ".join(dict.fromkeys(s.description for s in specs))
        if len(path) == 1:
            parent = commands
        else:
            if path[0] not in groups:
                subs = [p[1] for p in found if p[0] == path[0]]
                groups[path[0]] = group(commands, path[0], f"{' or '.join(subs)} {path[0]}",
                                        f"{path[0]}: queued actions ({', '.join(subs)}).")
            parent = groups[path[0]]
        parser = parent.add_parser(path[-1], help=text, description=text[0].upper() + text[1:]
                                   + "." + QUEUE_NOTE)
        _add_arguments(parser, specs)
        parser.set_defaults(func=cmd_action, action_path=path, action_specs=specs)


def _add_arguments(parser: argparse.ArgumentParser, specs: list[ActionSpec]) -> None:
    first = specs[0]
    if first.creates:
        parser.add_argument("vendor", metavar="VENDOR", help="the vendor instance")
    elif any(s.many for s in specs):
        parser.add_argument("orders", nargs="+", metavar="VENDOR:ID", help="orders to act on")
    else:
        parser.add_argument("orders", nargs=1, metavar="VENDOR:ID", help="the order")
    params = merged_params(specs)
    exclusive = {}
    for names in first.one_of:
        together = parser.add_mutually_exclusive_group(required=True)
        exclusive.update(dict.fromkeys(names, together))
    for param in params.values():
        target = exclusive.get(param.name, parser)
        if param.positional:
            target.add_argument(f"p_{param.name}", metavar=param.metavar or param.name.upper(),
                                nargs=("+" if param.required else "*") if param.repeatable
                                else (None if param.required else "?"), help=param.help)
            continue
        options: dict[str, Any] = {"dest": f"p_{param.name}", "default": argparse.SUPPRESS,
                                   "help": param.help}
        if param.type is ParamType.BOOL:
            options["action"] = "store_true"
        else:
            options["metavar"] = None if param.choices else (param.metavar or "VALUE")
            options["choices"] = param.choices or None
            options["action"] = "append" if param.repeatable else "store"
            options["required"] = param.required and len(specs) == 1
        target.add_argument(param.option, **options)
    _queue_options(parser)


def add_chain_command(commands) -> None:
    chain = commands.add_parser(
        "chain", help="queue several actions on one order as one intent",
        description="Queue several actions on one order as one chain, all or nothing: each"
        " step runs only after the one before it succeeded, on the same order; a first step"
        " that creates the order gives the later steps their order. A step that ends failed,"
        " dead or uncertain leaves the later steps pending, waiting (`actions list` says for"
        " what): `actions retry` it to go on, or `actions cancel` them." + QUEUE_NOTE)
    chain.add_argument("target", metavar="VENDOR[:ID]",
                       help="the vendor instance (the first step creates the order) or the"
                       " order the steps act on")
    steps = chain.add_mutually_exclusive_group(required=True)
    steps.add_argument("--step", action="append", metavar="'KIND NAME=VALUE ...'",
                       help="one step: an action kind and its parameters (declared names;"
                       " repeat a name for several values); repeat --step for each step")
    steps.add_argument("--from", dest="from_file", metavar="FILE",
                       help="a JSON or TOML file: {\"steps\": [{\"action\": KIND, NAME: VALUE,"
                       " ...}, ...]}")
    _queue_options(chain)
    chain.set_defaults(func=cmd_chain)


def _queue_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", metavar="KEY",
                        help="idempotency key (default: derived from the action itself, so"
                        " repeating a command queues nothing new)")
    parser.add_argument("--wait", action="store_true",
                        help="wait until the actions have ended and exit 0 only if all"
                        " succeeded; when no daemon runs, this command performs them (with"
                        " any other due actions of the same vendor)")
    parser.add_argument("--timeout", type=seconds, default=60.0, metavar="S",
                        help="with --wait: give up waiting after S seconds (default: 60)")
    parser.add_argument("--json", action="store_true", help="print the actions as JSON")


def cmd_action(args) -> int:
    """Queue (and with --wait, see through) what an action command asks; print the result."""
    from .actions import enqueue_command

    params = merged_params(args.action_specs)
    values = {name: getattr(args, f"p_{name}") for name in params
              if getattr(args, f"p_{name}", None) not in (None, [])}
    for name, value in values.items():
        if params[name].type is ParamType.FILE and isinstance(value, str):
            values[name] = read_fields(Path(value), params[name].option)
    if args.action_specs[0].creates:
        known_instance(args.config_obj, args.vendor)
        targets: list[tuple[str, str | None]] = [(args.vendor, None)]
    else:
        targets = [parse_order_ref(text) for text in args.orders]
    try:
        queued = asyncio.run(enqueue_command(args.config_obj, args.action_path, targets,
                                             values, key=args.key))
    except ParameterError as exc:
        param = params.get(exc.param)
        shown = param.metavar if param and param.positional else (
            param.option if param else "--" + exc.param.replace("_", "-"))
        raise UsageError(f"{shown}: {exc.detail}") from None
    return report(args, queued)


def cmd_chain(args) -> int:
    """Queue the steps of a chain (from --step or --from FILE) as one intent."""
    from .actions import enqueue_chain

    instance, sep, vendor_id = args.target.partition(":")
    if sep:
        parse_order_ref(args.target)
    known_instance(args.config_obj, instance)
    if args.from_file:
        steps = _file_steps(read_fields(Path(args.from_file), "--from"), args.from_file)
    else:
        steps = [_step(text) for text in args.step]
    try:
        queued = asyncio.run(enqueue_chain(args.config_obj, instance, vendor_id or None, steps,
                                           key=args.key))
    except ParameterError as exc:
        raise UsageError(f"--{exc.param.replace('_', '-')}: {exc.detail}") from None
    return report(args, queued)


def _step(text: str) -> tuple[str, dict]:
    """``KIND NAME=VALUE ...`` -> (kind, values); a name given twice collects a list."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--step {text!r}: {exc}") from None
    if not words:
        raise UsageError("--step: give an action kind and its parameters")
    values: dict[str, Any] = {}
    for word in words[1:]:
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise UsageError(f"--step {text!r}: {word!r} is not NAME=VALUE")
        values[name] = [*values[name], value] if isinstance(values.get(name), list) else (
            [values[name], value] if name in values else value)
    return words[0], values


def _file_steps(data: dict, path: str) -> list[tuple[str, dict]]:
    steps = data.get("steps")
    if not isinstance(steps, list) or not all(
            isinstance(s, dict) and isinstance(s.get("action"), str) for s in steps):
        raise UsageError(f"--from {path}: expected {{\"steps\": [{{\"action\": KIND, ...}}]}}")
    return [(s["action"], {k: v for k, v in s.items() if k != "action"}) for s in steps]


def report(args, queued: list) -> int:
    """Print what was queued, or with --wait see it through and print how it ended."""
    if args.wait:
        return wait_and_report(args.config_obj, [a.id for a, _ in queued], args)
    if args.json:
        print_json(args, [{**action_json(a), "queued": created} for a, created in queued])
    else:
        for action, created in queued:
            verb = "queued" if created else "already queued"
            say(f"{verb} action #{action.id}: {action.kind} {action.target}"
                f" ({action.state.value})")
    return EXIT_OK


def read_fields(path: Path, option: str) -> dict:
    """An object of fields from a JSON file or (``.toml``) a TOML file."""
    try:
        text = read_text(path, FIELDS_MAX_BYTES, "a file of fields")
    except FileUnreadable as exc:
        raise UsageError(f"{option} {exc}") from None
    toml = path.suffix == ".toml"
    try:
        data = tomllib.loads(text) if toml else orjson.loads(text)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"{option} {path}: not valid {'TOML' if toml else 'JSON'}: {exc}"
                         ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{option} {path}: expected an object of order fields")
    return data


def wait_and_report(config: Config, ids: list[int], args) -> int:
    from .actions import wait_for

    try:
        actions = run_interruptible(wait_for(config, ids, timeout_s=args.timeout))
    except Interrupted:
        _report_left_behind(config, ids)
        raise
    succeeded = all(a.state is ActionState.SUCCEEDED for a in actions)
    if args.json:
        print_json(args, [action_json(a) for a in actions], ok=succeeded)
    else:
        for action in actions:
            detail = f": {action.last_error}" if action.last_error and (
                action.state is not ActionState.SUCCEEDED) else ""
            say(f"action #{action.id}: {action.kind} {action.target} {action.state.value}"
                f"{detail}")
    return EXIT_OK if succeeded else EXIT_FAILED


def _report_left_behind(config: Config, ids: list[int]) -> None:
    """After an interrupted --wait: where each action stands, and who finishes it."""
    from .actions import _read

    for action in _read(config, ids):
        state = action.state
        if state is ActionState.IN_FLIGHT:
            fate = "being sent by the running daemon: it continues in the background"
        elif state is ActionState.PENDING and action.needs_verification:
            fate = ("may have reached the vendor: it stays queued, and the daemon or the next"
                    " `ordersync sync --once` asks the vendor before sending it again")
        elif state is ActionState.PENDING:
            fate = ("not sent yet: it stays queued for the daemon or the next"
                    " `ordersync sync --once`")
        else:
            fate = state.value
        say(f"action #{action.id}: {action.kind} {action.target} {fate}", file=sys.stderr)

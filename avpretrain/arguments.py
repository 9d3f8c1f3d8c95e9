"""Typed options: ``Literal`` choices checked at runtime, and parsers generated from signatures.

A ``Literal`` annotation is what jsonargparse (and LightningCLI) validates a string option
against; :func:`check_choice` gives classes built directly from Python the same check.
:func:`dataclass_parser` builds a command's parser from a dataclass (its fields, types, defaults
and the ``Args:`` of its docstring), :func:`function_parser` from a function's signature and
docstring; :func:`canonical_flags` keeps the command's older flag names, and
``--dashed-names``, working.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, get_args, get_type_hints

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser


def choices(literal: Any) -> tuple[Any, ...]:
    """The values a ``Literal[...]`` type allows."""
    return get_args(literal)


def check_choice(name: str, value: object, literal: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is one of the strings of the ``Literal`` type.

    Raises:
        ValueError: ``"<name> must be one of (...), got <value>"``.
    """
    allowed = choices(literal)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def canonical_flags(
    argv: Sequence[str], names: Iterable[str], aliases: Mapping[str, str] | None = None
) -> list[str]:
    """``argv`` with ``--old-name`` and ``--dashed-name`` rewritten to ``--field_name``.

    Args:
        argv: the command line.
        names: the parser's option names, without ``--`` (the dataclass field names).
        aliases: older flag names (without ``--``) -> field name, e.g. ``{"frames": "num_frames"}``.

    Returns:
        the command line with only the flags that name a field (or an alias) rewritten; values,
        positionals and everything after ``--`` are left alone.
    """
    known, aliases = set(names), aliases or {}
    out: list[str] = []
    for i, token in enumerate(argv):
        if token == "--":
            return [*out, *argv[i:]]
        flag, sep, value = token.partition("=")
        if flag.startswith("--"):
            key = aliases.get(flag[2:], flag[2:]).replace("-", "_")
            if key in known:
                token = f"--{key}{sep}{value}"
        out.append(token)
    return out


def dataclass_parser(
    cls: type,
    prog: str,
    description: str,
    aliases: Mapping[str, str] | None = None,
    skip: set[str] | None = None,
) -> ArgumentParser:
    """A jsonargparse parser with one option per field of the dataclass ``cls``.

    Options are ``--field_name`` with the field's type (``Literal`` fields list their choices),
    default and docstring help; the epilog lists the ``aliases`` still accepted through
    :func:`canonical_flags`.

    Args:
        cls: the dataclass.
        prog: the command, for the usage line.
        description: what the command does.
        aliases: older flag name -> field name.
        skip: fields left out (e.g. to add them as required options of the command).
    """
    from jsonargparse import ArgumentParser

    epilog = "Options may also be spelled with dashes (--field-name)"
    if aliases:
        old = ", ".join(f"--{a} (--{f})" for a, f in aliases.items())
        epilog += f"; also accepted: {old}"
    parser = ArgumentParser(prog=prog, description=description, epilog=epilog + ".")
    parser.add_class_arguments(cls, skip=set(skip or ()))
    return parser


def field_values(namespace: Any, cls: type) -> dict[str, Any]:
    """The values of ``cls``'s fields in a parsed ``namespace``, as keyword arguments."""
    return {f.name: namespace[f.name] for f in fields(cls) if f.name in namespace}


def function_parser(
    function: Callable[..., Any],
    prog: str,
    description: str,
    aliases: Mapping[str, str] | None = None,
) -> ArgumentParser:
    """A command line generated from ``function``'s signature and docstring.

    The first parameter is the positional argument; the others are ``--name`` options with their
    types, defaults and the help of the docstring's ``Args:``, except the ``bool`` ones, which are
    switches: ``--name`` turns a False default on, ``--no_name`` a True default off.
    :func:`parse_call` builds it and parses, accepting ``aliases`` and ``--dashed-names`` too.

    Args:
        function: the function the command calls with the parsed options.
        prog: the command, for the usage line.
        description: what the command does.
        aliases: older flag name (no ``--``) -> parameter name, listed in the epilog.
    """
    from docstring_parser import parse
    from jsonargparse import ArgumentParser

    params = inspect.signature(function).parameters
    hints = get_type_hints(function)
    helps = {p.arg_name: p.description for p in parse(function.__doc__ or "").params}
    positional = next(iter(params))
    switches = [name for name in params if hints.get(name) is bool]
    epilog = "Options may also be spelled with dashes (--option-name)"
    if aliases:
        epilog += "; also accepted: " + ", ".join(f"--{a} (--{n})" for a, n in aliases.items())
    parser = ArgumentParser(prog=prog, description=description, epilog=epilog + ".")
    parser.add_argument(positional, help=helps.get(positional))
    parser.add_function_arguments(function, skip={positional, *switches}, as_group=False)
    for name in switches:
        if params[name].default:
            text = f"set {name} to False. {name}: {helps.get(name)}"
            parser.add_argument(f"--no_{name}", dest=name, action="store_false", help=text)
        else:
            parser.add_argument(f"--{name}", action="store_true", help=helps.get(name))
    return parser


def parse_call(
    function: Callable[..., Any],
    prog: str,
    description: str,
    argv: Sequence[str] | None,
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``function``'s keyword arguments from the command line ``argv`` (None: ``sys.argv``).

    Parsed with :func:`function_parser` (same arguments); the ``aliases`` and
    ``--dashed-names`` of its parameters (and of their ``--no_name`` switches) are rewritten
    first (:func:`canonical_flags`).
    """
    parser = function_parser(function, prog, description, aliases)
    params = list(inspect.signature(function).parameters)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(
        canonical_flags(argv, [*params, *(f"no_{p}" for p in params)], aliases)
    )
    return {name: args[name] for name in params if name in args}

"""Go-style command-line flags (``--name=value``, ``-name value``, bare booleans) as agnhost takes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

FlagValue = bool | int | str


class FlagError(ValueError):
    pass


def _convert(name: str, default: FlagValue, raw: str) -> FlagValue:
    if isinstance(default, bool):
        if raw.lower() in ("1", "t", "true"):
            return True
        if raw.lower() in ("0", "f", "false"):
            return False
        raise FlagError(f'invalid argument "{raw}" for "--{name}" flag: expected a boolean')
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise FlagError(f'invalid argument "{raw}" for "--{name}" flag: expected an integer') from None
    return raw


def parse_flags(argv: Sequence[str], defaults: Mapping[str, FlagValue]) -> tuple[dict[str, FlagValue], list[str]]:
    """Values for every flag in ``defaults`` (the default's type is the flag's type) and the positional rest."""
    values = dict(defaults)
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            rest.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            rest.append(arg)
            continue
        name, eq, raw = arg.lstrip("-").partition("=")
        if name not in defaults:
            raise FlagError(f"unknown flag: --{name}")
        default = defaults[name]
        if not eq:
            if isinstance(default, bool):
                raw = "true"
            elif i < len(argv):
                raw = argv[i]
                i += 1
            else:
                raise FlagError(f"flag needs an argument: --{name}")
        values[name] = _convert(name, default, raw)
    return values, rest

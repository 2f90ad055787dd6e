"""Reader training, evaluation, calibration and export; helpers their command lines share."""

from __future__ import annotations

import argparse
from dataclasses import asdict


def add_bf16_option(parser: argparse.ArgumentParser) -> None:
    """``--bf16/--no-bf16``: bf16 autocast where the CPU has it natively; unset means the engine's ``QA_USE_BF16``."""
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast where the CPU has it natively (default: the engine's setting, QA_USE_BF16)")


def use_bf16(args: argparse.Namespace) -> bool:
    """The engine's ``use_bf16`` setting, overridden by ``--bf16/--no-bf16`` when given."""
    from qa.config import Settings

    return Settings.from_env(use_bf16=args.bf16).use_bf16


def add_config_options(parser: argparse.ArgumentParser, config) -> argparse.ArgumentParser:
    """One ``--option`` per field of the dataclass instance ``config``, its value the default.

    Booleans get ``--x/--no-x``; a field whose default is None takes an integer.
    """
    for name, default in asdict(config).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif default is None:
            parser.add_argument(flag, type=int, default=None)
        else:
            parser.add_argument(flag, type=type(default), default=default)
    return parser

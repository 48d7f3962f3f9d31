"""The `prfaas-plan` command line: thin commands over the library; the only package importing typer.

This module is the registry: it builds the root `app` and adds each command group's commands
(one module per group, as huggingface_hub's `cli/hf.py`):

- ``plan.py``: scenarios, optimize, whatif
- ``explore.py``: sweep, report
- ``simulate.py``: simulate
- ``risk.py``: risk (Monte Carlo over the scenario's uncertainties)
- ``engine.py``: estimate, calibrate, kv, validate
- ``catalog.py``: the ``hardware`` and ``models`` groups
- ``_common.py``: the options every command shares (``Annotated`` aliases), ``emit`` and the
  PlanError boundary; ``values.py``: the start-up work saved (plain option values, one BLAS thread).

Every command turns a :class:`~prfaas_plan.errors.PlanError` into one line on stderr and exit
code 2; nothing is written when a command fails.
"""

# No `from __future__ import annotations` in the typer modules: typer reads every command's
# annotations on each run, and as strings it would compile and evaluate them all again (~5 ms a run).

import sys
from typing import Annotated

import typer
import typer.core

from ..errors import PlanError
from . import catalog, engine, explore, plan, risk, simulate
from .values import one_blas_thread, plain_values


#: click's base of usage errors, found through typer's public BadParameter (recent typer vendors
#: click, older typer uses the click package).
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _no_flag_types(command, ctx, depth: int = 0) -> None:
    """Help shows no ``<bool>`` after a flag that takes no value (typer >= 0.2x prints the type of
    every option); the flags of ``command``, its help option and, to ``depth`` levels, its
    subcommands' are given no type to display."""
    help_option = command.get_help_option(ctx)
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) and hasattr(param, "display_type_rich"):
            param.display_type_rich = _no_type
    if depth > 0:
        for sub in getattr(command, "commands", {}).values():
            _no_flag_types(sub, ctx, depth - 1)


def _no_type(ctx=None) -> None:
    return None


class OneLineErrors(typer.core.TyperGroup):
    """The root command group: a usage error (unknown option, missing argument, bad value) is
    one line on stderr and exit code 2, like a PlanError, instead of click's framed block."""

    def parse_args(self, ctx, args):
        plain_values(self, ctx)
        _no_flag_types(self, ctx)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:  # the command run, and below a group (hardware, models) its commands
            plain_values(command, ctx, depth=1)
            _no_flag_types(command, ctx, depth=1)
        return name, command, rest

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        one_blas_thread()
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as exc:
            command = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) is not None else ""
            typer.echo(str(PlanError(f"error: {command}{exc.format_message()} (see --help)")), err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    help="Capacity planner for Prefill-as-a-Service (PrfaaS): route long prompts to a remote "
    "prefill cluster, ship their KV cache over Ethernet, decode locally.",
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"prfaas-plan {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False) -> None:
    """Capacity planner for Prefill-as-a-Service (PrfaaS)."""


# The order of `--help` (commands, then the groups).
for _command in (engine.kv, engine.validate, plan.scenarios, plan.optimize, plan.whatif, engine.estimate, explore.sweep, engine.calibrate,
                 explore.report, simulate.simulate, risk.risk):
    app.command()(_command)
app.add_typer(catalog.hardware_app, name="hardware")
app.add_typer(catalog.models_app, name="models")


def main() -> None:  # pragma: no cover - console-script entry point
    app()

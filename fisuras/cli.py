"""The ``fisuras`` command line: parse, resolve settings, call the library. No logic lives here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from fisuras.config import Settings, SettingsError, load_settings

KNOB_FILE = "config.py"


def _parse_set(values: tuple[str, ...]) -> dict[str, Any]:
    """``--set key=value`` pairs; values are read as YAML scalars (true, 3, 1e-4, null)."""
    parsed = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected key=value, e.g. gpu.enable_xla=false")
        parsed[key.strip()] = yaml.safe_load(raw)
    return parsed


def settings_options(func):
    """Options every command that runs something shares: the knob file, a run file, overrides."""
    func = click.option("--set", "set_values", multiple=True, metavar="KEY=VALUE",
                        help="Override any setting, e.g. --set gpu.enable_xla=false.")(func)
    func = click.option("--config", "run_file", type=click.Path(exists=True, dir_okay=False),
                        help="YAML run file (keys as in `fisuras config show`).")(func)
    func = click.option("--knobs", "knob_file", type=click.Path(dir_okay=False),
                        default=None,
                        help=f"The seed's knob file (default: ./{KNOB_FILE} if present).")(func)
    return func


def resolve_settings(knob_file: str | None, run_file: str | None, set_values: tuple[str, ...],
                     **flags: Any) -> Settings:
    """Defaults < knob file < run file < --set < explicit flags; errors exit with the message."""
    if knob_file is None and Path(KNOB_FILE).is_file():
        knob_file = KNOB_FILE
    overrides = {**_parse_set(set_values), **{k: v for k, v in flags.items() if v is not None}}
    try:
        return load_settings(knob_file, run_file, overrides)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fisuras")
def main() -> None:
    """fisuras: train and run crack detection and segmentation models, fast, and measure it."""


@main.command()
@settings_options
def doctor(knob_file, run_file, set_values) -> None:
    """Check Python, TensorFlow, CUDA, GPUs and WSL2; print the hardware plan."""
    from fisuras import hardware
    from fisuras.hardware import doctor as doc

    settings = resolve_settings(knob_file, run_file, set_values)
    applied = hardware.configure(settings)
    checks = doc.run_checks()
    click.echo(doc.format_report(checks))
    click.echo("\nPlan for this machine:")
    click.echo(hardware.describe_applied(applied))
    sys.exit(doc.exit_code(checks))


@main.group()
def config() -> None:
    """Show the resolved settings."""


@config.command("show")
@settings_options
@click.option("--plan/--no-plan", default=False, help="Also show the hardware plan.")
def config_show(knob_file, run_file, set_values, plan) -> None:
    """Print the resolved settings as YAML (the shape a --config run file takes)."""
    settings = resolve_settings(knob_file, run_file, set_values)
    click.echo(settings.to_yaml().rstrip())
    if plan:
        from fisuras.hardware import detect, make_plan

        click.echo("\n# hardware plan\n" + make_plan(detect(), settings).describe())


if __name__ == "__main__":
    main()

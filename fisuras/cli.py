"""The ``fisuras`` command line: parse, resolve settings, call the library. No logic lives here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from fisuras.config import Settings, SettingsError, load_settings
from fisuras.errors import FisurasError

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
                        help=f"The seed's knob file (default: ./{KNOB_FILE} when run from the "
                             "project root; elsewhere only when given).")(func)
    return func


def is_project_root(folder: Path) -> bool:
    """The seed repository's root: ``config.py`` next to ``scripts/utils/configurar_gpu.py``."""
    return (folder / KNOB_FILE).is_file() and \
        (folder / "scripts" / "utils" / "configurar_gpu.py").is_file()


def resolve_settings(knob_file: str | None, run_file: str | None, set_values: tuple[str, ...],
                     **flags: Any) -> Settings:
    """Defaults < knob file < run file < --set < explicit flags; errors exit with the message.

    Without ``--knobs``, ``./config.py`` is read only in the project root (``is_project_root``):
    the file is executed, and a ``config.py`` in a dataset folder is not the user's knob file.
    """
    if knob_file is None and Path(KNOB_FILE).is_file():
        if is_project_root(Path.cwd()):
            knob_file = KNOB_FILE
        else:  # any folder's config.py (a downloaded dataset's...) would run as Python
            click.echo(f"note: ./{KNOB_FILE} was not read: this folder is not the fisuras "
                       f"project root (no scripts/utils/configurar_gpu.py beside it); "
                       f"--knobs {KNOB_FILE} reads it.", err=True)
    overrides = {**_parse_set(set_values), **{k: v for k, v in flags.items() if v is not None}}
    try:
        return load_settings(knob_file, run_file, overrides)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def requested_changes(run_file: str | None, set_values: tuple[str, ...],
                      **flags: Any) -> dict[str, Any]:
    """What the command line asks for explicitly (dotted keys): run file, --set, then flags."""
    from fisuras.config import dotted, read_run_file

    try:
        asked = dotted(read_run_file(run_file)) if run_file else {}
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    return {**asked, **_parse_set(set_values), **{k: v for k, v in flags.items()
                                                   if v is not None}}


def described_gpu_options(help_text: str):
    """``--gpu NAME,CC,MIB`` (repeatable) and ``--wsl2``: hardware described, not detected."""
    def decorate(func):
        func = click.option("--wsl2", is_flag=True, default=False,
                            help="With --gpu: the described machine runs WSL2.")(func)
        return click.option("--gpu", "gpus", multiple=True, metavar="NAME,CC,MIB",
                            help=help_text)(func)
    return decorate


def described_facts(gpus: tuple[str, ...], wsl2: bool):
    """This machine's facts with the described GPUs, or ``None`` when none is described."""
    from fisuras.hardware import detect_facts
    from fisuras.hardware.facts import GpuDescriptionError, described, gpu_from_text

    if wsl2 and not gpus:
        raise click.BadParameter("describe the GPU too (--gpu NAME,CC,MIB)", param_hint="--wsl2")
    if not gpus:
        return None
    try:
        described_gpus = tuple(gpu_from_text(text) for text in gpus)
    except GpuDescriptionError as error:
        raise click.BadParameter(str(error), param_hint="--gpu") from None
    return described(detect_facts(), described_gpus, wsl2=wsl2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fisuras")
def main() -> None:
    """fisuras: train and run crack detection and segmentation models, fast, and measure it."""
    from fisuras.native_log import quiet_tensorflow

    quiet_tensorflow()  # before any command imports TensorFlow; the command line's choice only


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
@described_gpu_options("Plan for a GPU you describe instead of this machine's, e.g. "
                       "--gpu 'RTX 2050,8.6,4096' (repeat for several GPUs). Implies --plan.")
def config_show(knob_file, run_file, set_values, plan, gpus, wsl2) -> None:
    """Print the resolved settings as YAML (the shape a --config run file takes).

    With --gpu, the plan is made for hardware described on the command line (the CPU facts are
    this machine's), so a laptop's plan can be seen before installing CUDA on it.
    """
    from fisuras.hardware import detect_facts, make_plan
    from fisuras.tasks import TASKS

    settings = resolve_settings(knob_file, run_file, set_values)
    facts = described_facts(gpus, wsl2)
    click.echo(settings.to_yaml().rstrip())
    for task in TASKS.values():
        if (epoch := task.describe_epoch(settings)) is not None:
            click.echo(f"\n# {epoch}")
    if plan or facts:
        title = "# hardware plan"
        if facts:
            title += (" for described hardware: " + "; ".join(
                f"{g.name} (compute capability {g.compute_capability[0]}."
                f"{g.compute_capability[1]}, {g.memory_mb} MiB)" for g in facts.gpus)
                + (", WSL2" if wsl2 else "") + f"; CPU facts of this machine ({facts.cpu_cores} "
                "cores). A preview: nothing was run on that GPU")
        click.echo(f"\n{title}\n" + make_plan(facts or detect_facts(), settings).describe())


# --- training ---------------------------------------------------------------------------------
# The library's own errors derive from FisurasError and say what is wrong and where; a
# file-system error that names its file is as clear. Anything else is a bug: its traceback shows.
KNOWN_ERRORS: tuple[type[BaseException], ...] = (FisurasError, OSError)


def known_error_message(error: BaseException) -> str | None:
    """One line for an error the user can fix; ``None`` for any other (a bug, to surface)."""
    if isinstance(error, FisurasError):
        return str(error)
    if isinstance(error, OSError) and error.filename is not None:
        where = str(error.filename) if error.filename2 is None \
            else f"{error.filename} -> {error.filename2}"
        return f"{where}: {error.strerror or error}"
    return None


def _run_library(call):
    """Call into the library; a :class:`FisurasError`, or an ``OSError`` naming its file,
    becomes a one-line message and exit code 1. Any other exception propagates with its
    traceback: it is a bug, not something the user can fix."""
    try:
        return call()
    except KNOWN_ERRORS as error:
        message = known_error_message(error)
        if message is None:
            raise
        raise click.ClickException(message) from None


def _train_command(task: str):
    from fisuras.tasks import get_task

    job = get_task(task)
    epochs_key, frozen_key, backbone_key, size_key, batch_key = (
        job.key(name) for name in ("epochs", "frozen_epochs", "backbone", "image_size",
                                   "batch_size"))

    @click.argument("data", required=False, type=click.Path(exists=True, file_okay=False))
    @click.option("--resume", type=click.Path(exists=True, file_okay=False),
                  help="Continue this run folder (its settings and split) after a crash.")
    @click.option("--epochs", type=int, help=f"Total epochs ({epochs_key}).")
    @click.option("--frozen-epochs", type=int,
                  help=f"Epochs with the backbone frozen ({frozen_key}).")
    @click.option("--batch-size", type=int, help=f"Images per step ({batch_key}).")
    @click.option("--backbone", help=f"{backbone_key}, e.g. mobilenet_v2.")
    @click.option("--weights", help="imagenet, none, a local weights file, or a shipped model "
                  "to fine-tune from (crack-seg-s, crack-det-s: `fisuras models`; offline).")
    @click.option("--image-size", type=int, help=f"{size_key} (a multiple of 32).")
    @click.option("--name", help="Run name (folder under runs/<task>/).")
    @click.option("--skip-bad", is_flag=True, default=None,
                  help="Leave bad files out and record them, instead of stopping.")
    # Scale-out (issue 8): devices of this machine, and worker processes (from TF_CONFIG).
    @click.option("--devices", help="GPUs of this machine to mirror over: all or N (devices).")
    @click.option("--workers", type=int, help="Worker processes (workers); TF_CONFIG says who.")
    @described_gpu_options(
        "Plan as for a described GPU and run that plan on the devices TensorFlow sees here, "
        "e.g. --gpu 'RTX 2050,8.6,4096': checks a laptop's plan (precision, XLA, steps per "
        "execution) end to end before it meets its GPU; speed is this machine's.")
    @settings_options
    def command(data, resume, epochs, frozen_epochs, batch_size, backbone, weights, image_size,
                name, skip_bad, devices, workers, gpus, wsl2, knob_file, run_file, set_values):
        import os

        from fisuras import hardware
        from fisuras.distribute import settings_for_environment, train_distributed
        from fisuras.train import TrainingInterrupted, resumed_settings

        if data is None and resume is None:
            raise click.UsageError("give a DATA folder, or --resume RUN")
        flags = {epochs_key: epochs, frozen_key: frozen_epochs, batch_key: batch_size,
                 backbone_key: backbone, "weights": weights, size_key: image_size,
                 "run_name": name, "skip_bad": skip_bad, "devices": devices, "workers": workers}
        if resume:  # the run's own settings; what is asked here must be safe to change mid-run
            settings = _run_library(lambda: resumed_settings(resume, task, requested_changes(
                run_file, set_values, **flags)))
        else:
            settings = resolve_settings(knob_file, run_file, set_values, **flags)
        settings = _run_library(lambda: settings_for_environment(settings, os.environ))
        facts = described_facts(gpus, wsl2)
        plan = hardware.configure(settings, verbose=True, facts=facts).plan
        verbose = 1 if sys.stderr.isatty() else 2  # one line per epoch in logs and CI
        try:
            result = _run_library(lambda: train_distributed(
                task, data, settings, plan, environ=os.environ, resume=resume,
                verbose=verbose))
        except TrainingInterrupted as interrupted:
            click.echo(f"\n{interrupted}", err=True)
            sys.exit(130)  # the shell's code for Ctrl-C
        click.echo(format_train_result(result))

    command.__doc__ = (f"Train a {job.noun} model on "
                       "DATA; the run goes to runs/" + task + "/<name>/.")
    return command


def format_train_result(result) -> str:
    """A short summary of a finished run."""
    from fisuras.evaluate.summary import summary_lines

    return "\n".join(summary_lines(result.metrics) + [f"run folder: {result.run.path}"])


@main.group()
def train() -> None:
    """Train a detector or a segmenter."""


train.command("detect")(_train_command("detect"))
train.command("segment")(_train_command("segment"))


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.argument("data", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="test", type=click.Choice(["train", "val", "test"]),
              help="Which split of the run's manifest, when no DATA is given.")
@settings_options
def evaluate(run, data, split, knob_file, run_file, set_values) -> None:
    """Evaluate a trained RUN on its test split, or on every image of DATA."""
    from fisuras import hardware
    from fisuras.evaluate.summary import summary_lines
    from fisuras.train.finish import evaluate_run

    settings = resolve_settings(knob_file, run_file, set_values)
    hardware.configure(settings)
    result = _run_library(lambda: evaluate_run(run, data, settings, split=split))
    click.echo("\n".join(summary_lines({"test": result["figures"], "threshold":
                                        result["threshold"], "floor": result.get("floor")})))

# --- data --------------------------------------------------------------------------------------
@main.group()
def data() -> None:
    """Inspect, check and synthesize crack datasets."""


@data.command("inspect")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--task", type=click.Choice(["detect", "segment"]),
              help="When the layout is ambiguous.")
@click.option("--out", "out_png", type=click.Path(dir_okay=False),
              help="Sample grid PNG (default: <PATH name>_samples.png here).")
def data_inspect(path, task, out_png) -> None:
    """Counts per class and surface, imbalance, sizes, problems, and a grid of samples."""
    from fisuras.data import inspect_dataset, read_dataset

    out_png = out_png or f"{Path(path).resolve().name}_samples.png"
    report = _run_library(lambda: inspect_dataset(read_dataset(path, task=task), out_png))
    click.echo(report.to_text())  # ends with the sample grid's path


@data.command("check")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--task", type=click.Choice(["detect", "segment"]))
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also save the full report (every file and problem) as JSON here.")
def data_check(path, task, report_path) -> None:
    """Scan every file; exit 1 when something would stop training."""
    from fisuras.data import check_dataset, read_dataset

    report = _run_library(lambda: check_dataset(read_dataset(path, task=task)))
    click.echo(report.to_text())
    if report_path:
        report.save(report_path)
        click.echo(f"full report: {report_path}")
    sys.exit(0 if report.ok else 1)


@data.command("synth")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--per-class", default=100, show_default=True,
              help="Images per SDNET2018 class folder (e.g. D/CD).")
@click.option("--uncracked", type=int, help="Uncracked images per surface (default: --per-class).")
@click.option("--seg", "n_seg", default=60, show_default=True, help="Segmentation pairs.")
@click.option("--size", "image_size", default=256, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--workers", default=1, show_default=True)
def data_synth(out_dir, per_class, uncracked, n_seg, image_size, seed, workers) -> None:
    """Write synthetic cracks: an SDNET2018-style tree and segmentation pairs with exact masks."""
    from fisuras.data import synthesize

    summary = _run_library(lambda: synthesize(
        out_dir, n_per_class_per_surface=per_class, n_uncracked_per_surface=uncracked,
        n_seg=n_seg, image_size=image_size, seed=seed, workers=workers))
    click.echo(summary.to_text())


# --- demo --------------------------------------------------------------------------------------
@main.command()
@click.option("--workdir", default="demo_data", show_default=True, type=click.Path(file_okay=False))
@click.option("--shared-data", default="../shared/data", show_default=True,
              help="Real crack samples to evaluate on, when the folder exists.")
@settings_options
def demo(workdir, shared_data, knob_file, run_file, set_values) -> None:
    """Synthetic data -> a detector and a segmenter sized for this machine -> results table."""
    from fisuras import hardware
    from fisuras.demo import run_demo

    settings = resolve_settings(knob_file, run_file, set_values)
    plan = hardware.configure(settings, verbose=True).plan
    result = _run_library(lambda: run_demo(settings, plan, workdir=workdir,
                                           shared_data=shared_data))
    click.echo("\n" + result.table())
    for task, path in result.runs.items():
        click.echo(f"{task} run folder: {path}")
    if result.shipped:
        click.echo(result.shipped)



# --- benchmark ---------------------------------------------------------------------------------
@main.command()
@click.option("--steps", default=10, show_default=True, type=click.IntRange(min=1),
              help="Measured training steps per configuration, after the warm-up.")
@click.option("--backbone", help="Detection backbone (default: detect.backbone), e.g. small_cnn.")
@click.option("--image-size", type=int,
              help="Input side (default: detect.image_size); 96-128 for a quicker CPU run.")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False),
              help="A detection dataset (default: synthetic SDNET2018-shaped images).")
@click.option("--images", "n_images", default=56092, show_default=True,
              type=click.IntRange(min=1), help="Dataset size the epoch time is projected for.")
@click.option("--epochs", type=click.IntRange(min=1),
              help="Epochs the full-training time is projected for (default: detect.epochs).")
@click.option("--only", help="Comma-separated configurations, e.g. baseline,planned.")
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(min=1),
              help="Interleaved runs per configuration; the fastest counts (busy machines).")
@click.option("--timeout", default=1800.0, show_default=True,
              help="Seconds per configuration before it counts as failed.")
@click.option("--force-fail", envvar="FISURAS_BENCH_FORCE_FAIL", hidden=True,
              help="Test hook: comma-separated configurations that raise on purpose.")
@settings_options
def benchmark(steps, backbone, image_size, data_dir, n_images, epochs, only, repeats, timeout,
              force_fail, knob_file, run_file, set_values) -> None:
    """Measure the turbo on this machine: baseline, each optimisation alone, the planned setting."""
    from fisuras.bench import run_benchmark
    from fisuras.hardware import detect_facts

    settings = resolve_settings(knob_file, run_file, set_values)
    result = _run_library(lambda: run_benchmark(
        settings, detect_facts(), steps=steps, backbone=backbone, image_size=image_size,
        data=data_dir, n_images=n_images, epochs=epochs, only=only.split(",") if only else None,
        repeats=repeats, timeout_s=timeout,
        force_fail=[n for n in (force_fail or "").split(",") if n]))
    click.echo(result.table())
    click.echo(f"run folder: {result.out_dir}")
    sys.exit(1 if result.failures() else 0)

# --- scale-out ---------------------------------------------------------------------------------
@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--workers", type=click.IntRange(min=1), help="Local worker processes to start.")
@click.option("--restarts", default=0, show_default=True, type=click.IntRange(min=0),
              help="Start all workers again this many times after a failure (a named run "
                   "resumes from its last checkpoint).")
@click.option("--print-tf-config", "print_config", is_flag=True,
              help="Only print the TF_CONFIG of worker --index among --hosts (cluster scripts).")
@click.option("--hosts", help="Comma-separated host:port of every worker, for --print-tf-config.")
@click.option("--index", type=int, help="This worker's position in --hosts (0 is the chief).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def launch(workers, restarts, print_config, hosts, index, command) -> None:
    """Start COMMAND as local workers with TF_CONFIG, e.g.

    \b
    fisuras launch --workers 2 -- fisuras train detect DATA --name run1
    """
    import json

    from fisuras.distribute import launch as launch_workers
    from fisuras.distribute import tf_config_for
    from fisuras.hardware.facts import gpus_from_nvidia_smi

    if print_config:
        if not hosts or index is None:
            raise click.UsageError("--print-tf-config needs --hosts and --index")
        config = _run_library(lambda: tf_config_for(hosts.split(","), index))
        click.echo(json.dumps(config))
        return
    if not workers or not command:
        raise click.UsageError("give --workers N and a command after --")
    gpu_count = len(gpus_from_nvidia_smi() or ())
    sys.exit(_run_library(lambda: launch_workers(list(command), workers, restarts=restarts,
                                                 gpu_ids=range(gpu_count))))


# --- shipped models ----------------------------------------------------------------------------
@main.group(invoke_without_command=True)
@click.pass_context
def models(ctx) -> None:
    """The models fisuras ships (offline, by name): list them, or train one again."""
    if ctx.invoked_subcommand is not None:
        return
    from fisuras.shipped import list_shipped

    for line in list_shipped():
        click.echo(line)


@models.command("train")
@click.argument("name")
@click.option("--zoo", required=True, type=click.Path(exists=True, file_okay=False),
              help="The public crack data the recipe names (../shared/zoo).")
@click.option("--runs-dir", default="runs/shipped", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--resume", is_flag=True, help="Continue the stopped run of this recipe.")
@click.option("--no-install", is_flag=True, help="Do not copy the model into the package.")
def models_train(name, zoo, runs_dir, resume, no_install) -> None:
    """Train shipped model NAME from its recipe (hours on a CPU), evaluate it, install it."""
    import json

    from fisuras.train.recipe import train_recipe

    card = _run_library(lambda: train_recipe(name, zoo, runs_dir=runs_dir, resume=resume,
                                             install=not no_install,
                                             verbose=1 if sys.stderr.isatty() else 2))
    click.echo(json.dumps(card["figures"], indent=1, default=str))


# --- inference and export ---------------------------------------------------------------------
@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", "model_path",
              help="A run folder or model.keras of either task (routed by its model card), or "
                   "a shipped model's name (`fisuras models`), e.g. crack-det-s.")
@click.option("--detector", help="Detection run or shipped detector (heat map).")
@click.option("--segmenter", help="Segmentation run or shipped segmenter (mask).")
@click.option("--out", "out_dir", default="predictions", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--tile-overlap", default=0.25, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--mm-per-px", type=float, help="Scale for crack widths and lengths in mm.")
@click.option("--max-width-mm", default=0.3, show_default=True,
              help="Flag cracks wider than this (needs --mm-per-px).")
@click.option("--runtime", default="auto", show_default=True,
              type=click.Choice(["auto", "keras", "onnx"]),
              help="auto: ONNX Runtime when onnxruntime is installed and an up-to-date model.onnx "
                   "is beside the model, else Keras (never writes). onnx: export model.onnx "
                   "beside the model first if needed, checked against Keras.")
@settings_options
def predict(inputs, model_path, detector, segmenter, out_dir, tile_overlap, batch_size,
            mm_per_px, max_width_mm, runtime, knob_file, run_file, set_values) -> None:
    """Run models on INPUTS (files, folders, globs): verdicts, heat maps, masks, crack geometry.

    Both --detector and --segmenter: cascade mode (the detector picks the tiles to segment).
    No model given: the shipped segmenter crack-seg-s (`fisuras models`). report.json says
    which runtime ran each model (--runtime), and why.
    """
    from fisuras import hardware
    from fisuras.infer.loading import choose_models
    from fisuras.infer.predict import predict_paths

    hardware.configure(resolve_settings(knob_file, run_file, set_values))
    models = _run_library(lambda: choose_models(
        model_path, detector, segmenter, log=lambda line: click.echo(line, err=True)))
    if not models:
        raise click.UsageError("give --model, --detector or --segmenter")
    report = _run_library(lambda: predict_paths(
        list(inputs), detector=models.get("detect"), segmenter=models.get("segment"),
        out_dir=out_dir, tile_overlap=tile_overlap, batch_size=batch_size, mm_per_px=mm_per_px,
        max_width_mm=max_width_mm, progress=True, runtime=runtime))
    click.echo(f"{report.n_ok} image(s) done, {report.n_failed} skipped; "
               f"report: {report.csv_path} and {report.json_path}")
    if report.n_ok == 0:  # nothing to show for the run: scripts and CI must see a failure
        first = next(row["error"] for row in report.rows if row["status"] != "ok")
        raise click.ClickException(f"no image could be predicted: all {report.n_failed} "
                                   f"input(s) failed (first: {first})")


@main.command()
@click.argument("run", type=click.Path(exists=True))
@click.option("--format", "fmt", required=True,
              type=click.Choice(["keras", "savedmodel", "onnx", "tflite", "tflite-fp16"]))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Output folder (default: RUN/export).")
def export(run, fmt, out_dir) -> None:
    """Export a trained RUN (converted to float32) and check it matches the original."""
    from fisuras.infer.export import export_model

    out_dir = out_dir or str(Path(run) / "export")
    result = _run_library(lambda: export_model(run, fmt, out_dir))
    click.echo(f"{result.fmt}: {result.path} (largest difference from the original "
               f"{result.max_abs_diff:.2e}, tolerance {result.tolerance:.1e})")


if __name__ == "__main__":
    main()

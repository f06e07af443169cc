"""Kill -9 and resume benchmark (issue 14): does a killed training resume whole?

For each task (detection on ``/work/shared/data/cls_metu``, segmentation on a 12-photo subset
of ``/work/shared/data/seg_cfd``, linked, never copied), a small real training is run through
the real command line (``python -m fisuras train ...``) in a subprocess:

1. one clean run, timed: from its first ``Epoch 1/N`` line to its exit. That span is the kill
   window;
2. ``--trials`` times: a new run is started, and at an instant drawn uniformly in the window
   (counted from the trial's own ``Epoch 1/N`` line) it gets SIGKILL. The run folder is read
   at once (``state.json``: the epochs committed; the files a write left half done), then the
   run is resumed ONCE with ``fisuras train <task> --resume RUN``, to the end. A run that
   finished before its kill instant is not a trial: it is counted ("finished before kill")
   and a new instant is drawn.

Each trial is checked from its run folder after the resume:

* history: ``history.csv`` and ``state.json["history"]`` hold epochs 1..N, each once (none
  skipped, none repeated), and the resume started at the epoch after the committed one;
* models: ``checkpoints/last.keras``, ``checkpoints/best.keras`` and ``model.keras`` load with
  ``keras.models.load_model(path, compile=False, safe_mode=True)``;
* results: ``metrics.json`` and ``model_card.json`` are there (the run was finished, not only
  trained), ``state.json`` says finished;
* leftovers: no temporary file (a name starting with ``.``, in any folder of the run) and no
  ``epoch-*.keras`` remain;
* lost: epochs started before the kill (the log's ``Epoch k/N`` lines) minus epochs committed
  at the kill (``state.json`` read right after it): at most 1, the epoch in progress;
* resume: the single resume exited 0 (no manual step).

The kill's place is recorded when it can be told: the first step (its compile: the clean run's
``compile_seconds``), mid-epoch (training or validation), saving the epoch's model (an
uncommitted ``epoch-*.keras`` or a temporary file), publishing a committed epoch, between
epochs, or after training (the final evaluation).

Target (issue 14): 0 epochs skipped or repeated, at most the epoch in progress lost, every run
resumable without manual steps. The script prints a table per task and a summary line, and
exits 1 if any trial misses the target. Passing trials' run folders are deleted (``--keep``
keeps them); failing ones are kept and named.

The fisuras under test is a commit (``--commit``, default HEAD), exported with ``git archive``
into the work folder and put first on the trainings' ``PYTHONPATH``: the working tree may
change while the benchmark runs (``--working-tree`` tests it as it is). Runs are started in the
work folder, so the project's ``./config.py`` knobs do not apply: every setting that matters
is on the command line (``TASKS``); the resume is the bare ``--resume RUN``. The machine is
shared: the kill window is measured once, and a trial that runs slower than the clean run only
shifts where its kill lands.

Usage:
    python benchmarks/faults.py                              # 20 trials per task, ~40 min
    python benchmarks/faults.py --trials 3 --tasks detect    # a quick look
    python benchmarks/faults.py --seed 7 --workdir /tmp/faults --json faults.json --keep

Not part of ``make test`` (pytest collects ``tests/`` only).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path("/work/shared/data")
EPOCHS = 6
SEGMENT_PHOTOS = 12  # of seg_cfd's 30: the final evaluation tiles every test photo
MAX_LOST = 1  # the epoch in progress
RUN_TIMEOUT_S = 20 * 60
MAX_DRAWS = 10  # instants drawn for one trial before giving up (the run always finished first)

# Small real trainings; the same arguments for the clean run, each trial and its resume.
TASKS = {
    "detect": ["--backbone", "small_cnn", "--image-size", "64", "--weights", "none",
               "--epochs", str(EPOCHS), "--frozen-epochs", "2", "--batch-size", "16"],
    "segment": ["--backbone", "unet_light", "--image-size", "64", "--weights", "none",
                "--epochs", str(EPOCHS), "--batch-size", "16",
                "--set", "segment.min_steps_per_epoch=4",
                "--set", "segment.crops_per_photo=one"],
}

EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+)\s*$")
EPOCH_END_LINE = re.compile(r"^\d+/\d+ - ")  # Keras verbose=2: "13/13 - 1s - ... - loss: ..."


# --- the code under test ----------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Bench:
    """Where the benchmark works (runs, logs) and which fisuras it runs (None: the tree's)."""

    workdir: Path
    source: Path | None = None

    @property
    def runs_dir(self) -> Path:
        return self.workdir / "runs"

    def log(self, name: str) -> Path:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        return self.workdir / "logs" / name

    def start(self, command: list[str], log: Path) -> Training:
        return Training(command, log, self.workdir, self.source)


def snapshot(revision: str, workdir: Path) -> tuple[str, Path]:
    """Export ``fisuras/`` at ``revision`` (``git archive``) into the work folder.

    The working tree may change while the benchmark runs (others edit it); a commit does not.
    Returns the commit and the folder to put on ``PYTHONPATH``.
    """
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify",
                             f"{revision}^{{commit}}"], capture_output=True, text=True,
                            check=True).stdout.strip()
    target = workdir / f"src-{commit[:12]}"
    if not (target / "fisuras" / "__init__.py").is_file():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "fisuras"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return commit, target


# --- data --------------------------------------------------------------------------------------

def task_data(task: str, workdir: Path) -> Path:
    """The dataset a task trains on: cls_metu as is; the first photos of seg_cfd, linked."""
    if task == "detect":
        return SHARED_DATA / "cls_metu"
    source, subset = SHARED_DATA / "seg_cfd", workdir / "data" / "seg_cfd_subset"
    if not subset.is_dir():
        for image in sorted((source / "images").glob("*.jpg"))[:SEGMENT_PHOTOS]:
            mask = source / "masks" / f"{image.stem}.png"
            for kind, path in (("images", image), ("masks", mask)):
                (subset / kind).mkdir(parents=True, exist_ok=True)
                (subset / kind / path.name).symlink_to(path.resolve())
    return subset


# --- one training process, and its log ---------------------------------------------------------

class Training:
    """One ``fisuras train`` subprocess; stdout and stderr go to ``log``, read as they grow.

    ``source``: a folder holding the ``fisuras`` package to run instead of the installed one.
    """

    def __init__(self, command: list[str], log: Path, cwd: Path, source: Path | None = None):
        self.log, self.lines, self._read = log, [], 0
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if source is not None:  # the snapshot's fisuras before the editable install's
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source),
                                                              env.get("PYTHONPATH")]))
        with log.open("wb") as handle:  # a new log: a stale one would fake epoch lines
            self.process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=cwd, env=env)
        self.started = time.monotonic()

    def poll_lines(self) -> list[tuple[float, str]]:
        """New complete lines since the last call, each with the time it was seen."""
        with self.log.open("rb") as handle:
            handle.seek(self._read)
            chunk = handle.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self._read += len(complete)
        now = time.monotonic()
        new = [(now, line) for line in complete.decode("utf-8", "replace").splitlines()]
        self.lines += new
        return new

    def wait_for_epoch_start(self) -> float | None:
        """The time the first ``Epoch k/N`` line appeared; None if the process ended first."""
        while True:
            for seen, line in self.poll_lines():
                if EPOCH_LINE.match(line):
                    return seen
            if self.process.poll() is not None:
                return None
            time.sleep(0.02)

    def run_until(self, deadline: float) -> bool:
        """Let it run until ``deadline`` (monotonic); True if it is still running then."""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        return self.process.poll() is None

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.poll_lines()

    def wait(self) -> int:
        """Its exit code, reading the log as it grows (killed after ``RUN_TIMEOUT_S``)."""
        deadline = self.started + RUN_TIMEOUT_S
        while self.process.poll() is None and time.monotonic() < deadline:
            self.poll_lines()
            time.sleep(0.05)
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        code = self.process.wait()
        self.poll_lines()
        return code

    def epochs_started(self) -> list[int]:
        return [int(m.group(1)) for _, line in self.lines if (m := EPOCH_LINE.match(line))]

    def epochs_ended(self) -> int:
        return sum(bool(EPOCH_END_LINE.match(line)) for _, line in self.lines)


def train_command(task: str, data: Path | None, runs_dir: Path | None, name: str | None,
                  resume: Path | None = None) -> list[str]:
    """``python -m fisuras train TASK DATA <TASKS[task]> --name NAME``, or ``--resume RUN``."""
    command = [sys.executable, "-m", "fisuras", "train", task]
    if resume is not None:  # what a user types: the run keeps its own settings
        return [*command, "--resume", str(resume)]
    return [*command, str(data), *TASKS[task], "--name", name, "--set", f"runs_dir={runs_dir}"]


# --- the clean run: the kill window ------------------------------------------------------------

@dataclass
class CleanRun:
    seconds_to_first_epoch: float  # process start -> "Epoch 1/N"
    window_s: float  # "Epoch 1/N" -> exit: kills are drawn in it
    training_s: float  # "Epoch 1/N" -> last epoch's end line
    compile_s: float  # the first step (history.csv's compile_seconds of epoch 1)
    run: str


def clean_run(task: str, data: Path, bench: Bench) -> CleanRun:
    """Train once without a kill; time it, and check the run like a trial."""
    run, log = bench.runs_dir / task / f"{task}-clean", bench.log(f"{task}-clean.log")
    shutil.rmtree(run, ignore_errors=True)  # a new run under this name, not "-2"
    training = bench.start(train_command(task, data, bench.runs_dir, run.name), log)
    first = training.wait_for_epoch_start()
    code = training.wait()
    end = time.monotonic()
    if code != 0 or first is None:
        sys.exit(f"{task}: the clean run failed (exit {code}); see {training.log}")
    last_end = max(seen for seen, line in training.lines if EPOCH_END_LINE.match(line))
    history = read_history_csv(run / "history.csv")
    problems = check_history(history, EPOCHS) + check_models(run) + check_leftovers(run)
    if problems:
        sys.exit(f"{task}: the clean run is not whole ({'; '.join(problems)}): {run}")
    return CleanRun(seconds_to_first_epoch=first - training.started, window_s=end - first,
                    training_s=last_end - first,
                    compile_s=float(history[0].get("compile_seconds") or 0.0), run=str(run))


# --- one trial ---------------------------------------------------------------------------------

@dataclass
class Trial:
    task: str
    index: int
    run: str
    kill_at_s: float = 0.0  # after the "Epoch 1/N" line
    finished_before_kill: int = 0  # instants drawn too late (the run had ended): redrawn
    where: str = ""
    in_progress: int | None = None  # the epoch started and not committed at the kill
    started: int = 0  # epochs started before the kill (log)
    committed: int = 0  # epochs committed at the kill (state.json)
    resumed_at: int | None = None  # the first epoch the resume trained (None: none left)
    lost: int = 0
    resume_code: int | None = None
    history_ok: bool = False
    models_ok: bool = False
    results_ok: bool = False
    leftovers_ok: bool = False
    skipped: list[int] = field(default_factory=list)
    repeated: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def resume_ok(self) -> bool:
        return self.resume_code == 0

    @property
    def ok(self) -> bool:
        return not self.problems


def run_trial(task: str, index: int, data: Path, bench: Bench, clean: CleanRun,
              rng: random.Random) -> Trial:
    """Start, kill -9 at a random instant, read the folder, resume once, check."""
    name = f"{task}-{index:02d}"
    run = bench.runs_dir / task / name
    trial = Trial(task=task, index=index, run=str(run))
    for _ in range(MAX_DRAWS):
        shutil.rmtree(run, ignore_errors=True)
        log = bench.log(f"{name}.log")
        trial.kill_at_s = rng.uniform(0.0, clean.window_s)
        training = bench.start(train_command(task, data, bench.runs_dir, name), log)
        first = training.wait_for_epoch_start()
        if first is not None and training.run_until(first + trial.kill_at_s):
            training.kill()
            break
        code = training.wait()
        if code != 0 or first is None:
            trial.problems.append(f"the first start failed (exit {code}) before its kill")
            return trial
        trial.finished_before_kill += 1
    else:
        trial.problems.append(f"finished before its kill {MAX_DRAWS} times")
        return trial
    read_kill_point(trial, training, run, clean)
    resume_and_check(trial, task, run, bench)
    return trial


def read_kill_point(trial: Trial, training: Training, run: Path, clean: CleanRun) -> None:
    """What the kill left: epochs started (log) and committed (state.json), and where it hit."""
    started = training.epochs_started()
    trial.started = max(started, default=0)
    state = json.loads((run / "state.json").read_text(encoding="utf-8"))
    trial.committed = int(state["epoch"])
    trial.lost = trial.started - trial.committed
    trial.in_progress = trial.started if trial.lost > 0 else None
    trial.where = kill_place(trial, state, run, clean)


def kill_place(trial: Trial, state: dict, run: Path, clean: CleanRun) -> str:
    """Where the kill landed, from the log and the run folder as the kill left them."""
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    temps = [p.name for p in run.rglob(".*")]
    epoch_files = [n for n in checkpoints if n.startswith("epoch-")]
    if trial.in_progress is not None:
        if temps or any(n != state.get("checkpoint") for n in epoch_files):
            return f"saving epoch {trial.in_progress} (commit)"
        if trial.in_progress == 1 and trial.kill_at_s < clean.compile_s:
            return "epoch 1, first step (compile)"
        return f"mid-epoch {trial.in_progress}"
    if state.get("finished"):
        return "after training (evaluation)"
    if state.get("checkpoint") in epoch_files or temps:
        return f"publishing epoch {trial.committed}"
    if trial.committed >= EPOCHS:
        return "after the last epoch"
    return f"between epochs {trial.committed} and {trial.committed + 1}"


def resume_and_check(trial: Trial, task: str, run: Path, bench: Bench) -> None:
    """Resume once (``--resume RUN``), then check the run folder against the target."""
    resume = bench.start(train_command(task, None, None, None, resume=run),
                         bench.log(f"{run.name}.resume.log"))
    trial.resume_code = resume.wait()
    trial.resumed_at = min(resume.epochs_started(), default=None)
    if not trial.resume_ok:
        trial.problems.append(f"resume exited {trial.resume_code}")
    expected = trial.committed + 1 if trial.committed < EPOCHS else None
    if trial.resumed_at != expected:
        trial.problems.append(f"resume started at epoch {trial.resumed_at}, expected {expected}")
    if trial.lost > MAX_LOST:
        trial.problems.append(f"{trial.lost} epochs lost")
    if trial.lost < 0:
        trial.problems.append(f"{-trial.lost} epochs committed that the log never started")
    history = read_history_csv(run / "history.csv")
    state = json.loads((run / "state.json").read_text(encoding="utf-8"))
    epochs = [int(row["epoch"]) for row in history]
    trial.skipped = sorted(set(range(1, EPOCHS + 1)) - set(epochs))
    trial.repeated = sorted({e for e in epochs if epochs.count(e) > 1})
    history_problems = check_history(history, EPOCHS) + [
        f"state.json: {p}" for p in check_history(state.get("history") or [], EPOCHS)]
    trial.history_ok = not history_problems
    model_problems = check_models(run)
    trial.models_ok = not model_problems
    result_problems = check_results(run, state)
    trial.results_ok = not result_problems
    leftover_problems = check_leftovers(run)
    trial.leftovers_ok = not leftover_problems
    trial.problems += history_problems + model_problems + result_problems + leftover_problems


# --- checks ------------------------------------------------------------------------------------

def read_history_csv(path: Path) -> list[dict]:
    import csv

    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def check_history(rows: list[dict], epochs: int) -> list[str]:
    """Epochs 1..``epochs``, each exactly once, in order."""
    got = [int(row["epoch"]) for row in rows]
    if got == list(range(1, epochs + 1)):
        return []
    return [f"history epochs {got}, expected 1..{epochs}"]


def check_models(run: Path) -> list[str]:
    """Every model file loads the safe way (fisuras' custom layers registered, as
    ``fisuras.models.saving.load_model`` does, with the fisuras under test: see ``main``)."""
    import keras

    from fisuras.models import layers, losses, metrics  # noqa: F401  (importing registers them)

    problems = []
    for path in (run / "checkpoints" / "last.keras", run / "checkpoints" / "best.keras",
                 run / "model.keras"):
        try:
            keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as error:  # a missing or torn file: name it
            problems.append(f"{path.relative_to(run)}: {type(error).__name__}: "
                            f"{str(error).splitlines()[0] if str(error) else ''}")
    keras.backend.clear_session()
    return problems


def check_results(run: Path, state: dict) -> list[str]:
    problems = [f"{name} missing" for name in ("metrics.json", "model_card.json")
                if not (run / name).is_file()]
    if not state.get("finished") or int(state.get("epoch", 0)) != EPOCHS:
        problems.append(f"state.json: epoch {state.get('epoch')}, finished "
                        f"{state.get('finished')}")
    return problems


def check_leftovers(run: Path) -> list[str]:
    """No temporary file anywhere in the run (plots too), no epoch file, no checkpoint set
    aside as corrupt."""
    left = [p.relative_to(run) for p in sorted(run.rglob("*"))
            if p.name.startswith((".", "epoch-")) or ".corrupt-" in p.name]
    return [f"left over: {path}" for path in left]


# --- report ------------------------------------------------------------------------------------

def yes(value: bool) -> str:
    return "yes" if value else "**no**"


def print_table(task: str, trials: list[Trial]) -> None:
    print(f"\n### {task}\n")
    print("| trial | kill at s | where | epoch in progress | committed | resumed at | lost "
          "| history ok | models ok | results ok | no leftovers | resume ok |")
    print("|---:|---:|---|---:|---:|---:|---:|---|---|---|---|---|")
    for t in trials:
        print(f"| {t.index} | {t.kill_at_s:.1f} | {t.where} | {t.in_progress or '-'} "
              f"| {t.committed} | {t.resumed_at or '-'} | {t.lost} | {yes(t.history_ok)} "
              f"| {yes(t.models_ok)} | {yes(t.results_ok)} | {yes(t.leftovers_ok)} "
              f"| {yes(t.resume_ok)} |")
    for t in trials:
        if not t.ok:
            print(f"\ntrial {t.index} FAILED ({t.run}): " + "; ".join(t.problems))


def summary(task: str, trials: list[Trial]) -> dict:
    return {
        "task": task,
        "trials": len(trials),
        "finished_before_kill": sum(t.finished_before_kill for t in trials),
        "max_epochs_lost": max((t.lost for t in trials), default=0),
        "epochs_lost_total": sum(t.lost for t in trials),
        "skipped": sum(len(t.skipped) for t in trials),
        "repeated": sum(len(t.repeated) for t in trials),
        "resume_failures": sum(not t.resume_ok for t in trials),
        "unloadable_models": sum(not t.models_ok for t in trials),
        "results_missing": sum(not t.results_ok for t in trials),
        "leftovers": sum(not t.leftovers_ok for t in trials),
        "failures": sum(not t.ok for t in trials),
    }


def print_summary(rows: list[dict]) -> None:
    print("\n| task | trials | finished before kill (redrawn) | max epochs lost | epochs lost "
          "(total) | skipped | repeated | resume failures | unloadable models | results missing "
          "| leftovers | failed trials |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['task']} | {r['trials']} | {r['finished_before_kill']} "
              f"| {r['max_epochs_lost']} | {r['epochs_lost_total']} | {r['skipped']} "
              f"| {r['repeated']} | {r['resume_failures']} | {r['unloadable_models']} "
              f"| {r['results_missing']} | {r['leftovers']} | {r['failures']} |")


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{model}, {os.cpu_count()} cores"


# --- main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="kill -9 trials per task")
    parser.add_argument("--tasks", default="detect,segment", help="comma-separated")
    parser.add_argument("--seed", type=int, default=None, help="kill instants (default: random)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temp folder")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--keep", action="store_true", help="keep passing trials' run folders")
    parser.add_argument("--commit", default="HEAD",
                        help="the fisuras to test: this commit, exported (default HEAD)")
    parser.add_argument("--working-tree", action="store_true",
                        help="test the working tree as it is instead of a commit")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if unknown := [t for t in tasks if t not in TASKS]:
        parser.error(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="fisuras-faults-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    if args.working_tree:
        bench, code = Bench(workdir), "working tree"
    else:
        commit, source = snapshot(args.commit, workdir)
        bench, code = Bench(workdir, source), f"commit {commit}"
        sys.path.insert(0, str(source))  # the model checks register the same custom objects
    print(f"faults: {args.trials} kill -9 trials per task ({', '.join(tasks)}), seed {seed}, "
          f"{EPOCHS} epochs a run, workdir {workdir}")
    print(f"fisuras under test: {code} ({bench.source or REPO})")
    print(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine {machine()}", flush=True)
    started = time.monotonic()
    report: dict = {"seed": seed, "trials": args.trials, "workdir": str(workdir), "code": code,
                    "machine": machine(), "tasks": {}}
    rows = []
    for task in tasks:
        data = task_data(task, workdir)
        clean = clean_run(task, data, bench)
        print(f"\n{task}: {' '.join(TASKS[task])} on {data}")
        print(f"{task}: clean run {clean.seconds_to_first_epoch:.1f} s to 'Epoch 1', then "
              f"{clean.training_s:.1f} s of training and {clean.window_s:.1f} s to exit "
              f"(the kill window); first step {clean.compile_s:.1f} s", flush=True)
        trials = []
        for index in range(1, args.trials + 1):
            trial = run_trial(task, index, data, bench, clean, rng)
            trials.append(trial)
            print(f"  {task} trial {index}: kill at {trial.kill_at_s:.1f} s ({trial.where}), "
                  f"committed {trial.committed}, lost {trial.lost}, "
                  f"{'ok' if trial.ok else 'FAILED: ' + '; '.join(trial.problems)}", flush=True)
            if trial.ok and not args.keep:
                shutil.rmtree(trial.run, ignore_errors=True)
        print_table(task, trials)
        rows.append(summary(task, trials))
        report["tasks"][task] = {"args": TASKS[task], "data": str(data), "clean": asdict(clean),
                                 "summary": rows[-1],
                                 "trials": [{**asdict(t), "ok": t.ok} for t in trials]}
    print_summary(rows)
    failed = sum(r["failures"] for r in rows)
    verdict = ("target met: 0 epochs skipped or repeated, at most the epoch in progress lost, "
               "every run resumed by one --resume" if not failed else
               f"target MISSED: {failed} failed trial(s), run folders kept (listed above)")
    print(f"\n{verdict}; {(time.monotonic() - started) / 60:.1f} min")
    report["verdict"], report["minutes"] = verdict, (time.monotonic() - started) / 60
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

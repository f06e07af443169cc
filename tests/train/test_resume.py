"""A killed run resumes whole: the process is stopped at the exact instants of an epoch's commit.

Each case kills the training process (SIGKILL, no cleanup runs) at one point of
``RunFolder.commit_epoch`` during epoch 3, resumes it in a new process, and checks that the
history has every epoch once, the run finished, the checkpoints load and nothing torn is left.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap

import keras
import pytest

from fisuras.runs import RunFolder, RunFolderError, RunState
from fisuras.train.engine import Engine
from tests.conftest import REPO_ROOT
from tests.train.tiny import tiny_data, tiny_plan, tiny_spec

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from fisuras import files
    from fisuras import runs as run_module
    from fisuras.train.engine import Engine
    from fisuras.runs import RunFolder, RunState
    from tests.train.tiny import tiny_data, tiny_plan, tiny_spec

    KILL_EPOCH, WHERE, RESUME = 3, {where!r}, {resume}

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def armed(state_or_none=None):
        state = state_or_none if state_or_none is not None else None
        return state is not None and state.epoch == KILL_EPOCH

    if not RESUME:
        commit, write_state = RunFolder.commit_epoch, RunFolder.write_state
        settle, replace = RunFolder.settle, os.replace

        def commit_epoch(self, state, save):
            if state.epoch != KILL_EPOCH:
                return commit(self, state, save)
            if WHERE == "inside_model_write":  # half a model file, then the kill
                def torn(tmp):
                    Path(tmp).write_bytes(b"PK\\x03\\x04 torn")
                    kill()
                return commit(self, state, torn)
            if WHERE == "after_model_write":
                RunFolder.write_state = lambda self, state: kill()
            if WHERE == "inside_state_write":
                def torn_state(self, state):
                    files.atomic_write(self.file("state.json"),
                                       lambda tmp: (Path(tmp).write_text('{{"task": "de'), kill()))
                RunFolder.write_state = torn_state
            if WHERE == "after_state_write":
                RunFolder.settle = lambda self, state: kill()
            if WHERE == "between_best_and_last":
                def replace_then_kill(source, target):
                    if str(target).endswith("last.keras"):
                        kill()
                    return replace(source, target)
                run_module.os.replace = replace_then_kill
            return commit(self, state, save)

        RunFolder.commit_epoch = commit_epoch

    plan = tiny_plan()
    run = RunFolder(Path({run!r}))
    if not RESUME:
        run.write_state(RunState(task="detect", batch_size=plan.batch_size))
    engine = Engine(tiny_spec(2, 3), plan, run, verbose=0)
    engine.fit(tiny_data(), tiny_data(64, seed=1), resume=RESUME)
    print("ITER", int(engine.model.optimizer.iterations.numpy()))
""")


def run_script(run_path, where: str, resume: bool) -> subprocess.CompletedProcess:
    code = SCRIPT.format(where=where, run=str(run_path), resume=resume)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


# where the kill lands -> the epoch the run resumes at (3 is recorded only once committed)
INSTANTS = {"inside_model_write": 3, "after_model_write": 3, "inside_state_write": 3,
            "after_state_write": 4, "between_best_and_last": 4}


@pytest.mark.slow
@pytest.mark.parametrize("where", list(INSTANTS))
def test_a_kill_at_any_instant_of_the_epoch_commit_resumes_whole(tmp_path, where):
    run = RunFolder.create(tmp_path / "runs", "detect", "k")
    killed = run_script(run.path, where, resume=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = run_script(run.path, where, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {run.path} at epoch {INSTANTS[where]}," in resumed.stderr
    history = run.read_history()
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    assert [int(row["epoch"]) for row in RunFolder(run.path).read_history()] == [1, 2, 3, 4, 5]
    csv_epochs = run.file("history.csv").read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in csv_epochs] == ["1", "2", "3", "4", "5"]
    state = run.read_state()
    assert state.finished and state.epoch == 5 and state.checkpoint is not None
    leftovers = [p.name for p in run.path.rglob("*") if p.name.startswith((".", "epoch-"))]
    assert leftovers == []
    for path in (run.last_checkpoint, run.best_checkpoint):
        keras.models.load_model(path, compile=False, safe_mode=True)
    # the fine-tune optimizer's state came back: 3 epochs of 8 steps in its phase, once each
    assert int(resumed.stdout.split("ITER")[1]) == 3 * 8


def test_a_full_disk_keeps_the_previous_epoch_and_the_run_resumes(tmp_path, monkeypatch):
    plan = tiny_plan()
    run = RunFolder.create(tmp_path / "runs", "detect", "d")
    run.write_state(RunState(task="detect", batch_size=plan.batch_size))
    commit = RunFolder.commit_epoch

    def commit_with_full_disk(self, state, save):
        if state.epoch == 2:
            def no_space(tmp):
                raise OSError(errno.ENOSPC, "No space left on device", tmp)
            return commit(self, state, no_space)
        return commit(self, state, save)

    monkeypatch.setattr(RunFolder, "commit_epoch", commit_with_full_disk)
    engine = Engine(tiny_spec(0, 3), plan, run, verbose=0, log=lambda m: None)
    with pytest.raises(OSError, match=r"could not record epoch 2 .*No space left.*--resume"):
        engine.fit(tiny_data(), None)
    assert run.read_state().epoch == 1
    assert not [p for p in run.path.rglob("*") if p.name.startswith(".")]
    monkeypatch.undo()
    resumed = Engine(tiny_spec(0, 3), plan, run, verbose=0, log=lambda m: None)
    result = resumed.fit(tiny_data(), None, resume=True)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert run.read_state().finished


def test_an_unreadable_last_checkpoint_is_set_aside_and_best_takes_over(tmp_path):
    plan = tiny_plan()
    run = RunFolder.create(tmp_path / "runs", "detect", "c")
    run.write_state(RunState(task="detect", batch_size=plan.batch_size))
    Engine(tiny_spec(0, 3), plan, run, verbose=0).fit(tiny_data(), tiny_data(64, seed=1))
    state = run.read_state()
    state.finished, state.phase_index = False, 0
    run.write_state(state)
    run.last_checkpoint.write_bytes(b"")  # an empty file, as a full disk without fsync leaves
    messages: list[str] = []
    resumed = Engine(tiny_spec(0, 4), plan, run, verbose=0, log=messages.append)
    result = resumed.fit(tiny_data(), tiny_data(64, seed=1), resume=True)
    said = "\n".join(messages)
    assert f"{run.last_checkpoint}: unreadable checkpoint" in said
    assert f"resuming from best.keras (epoch {state.best_epoch})" in said
    assert list(run.path.glob("checkpoints/last.corrupt-*.keras"))
    assert [row["epoch"] for row in result.history] == list(range(1, 5))
    keras.models.load_model(run.last_checkpoint, compile=False, safe_mode=True)


def test_temp_files_anywhere_in_the_run_are_removed_on_resume(tmp_path):
    run = RunFolder.create(tmp_path / "runs", "detect", "t")
    run.write_state(RunState(task="detect", batch_size=8))
    torn = [run.path / "plots" / ".predictions.png.7sg6mgkp.png",
            run.path / "checkpoints" / ".last.keras.k2j4_x9a.keras",
            run.path / "checkpoints" / "epoch-0003.keras"]
    for path in torn:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    kept = run.path / "plots" / "history.png"
    kept.write_bytes(b"png")
    assert sorted(run.clean_interrupted_writes()) == sorted(torn)
    assert kept.is_file() and not any(path.exists() for path in torn)


def test_a_torn_state_file_is_named(tmp_path):
    run = RunFolder.create(tmp_path / "runs", "detect", "s")
    run.file("state.json").write_text('{"task": "det')
    with pytest.raises(RunFolderError, match=r"state\.json: cannot be read as a run state"):
        run.read_state()

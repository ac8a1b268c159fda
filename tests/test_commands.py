"""Every command the docs name runs: collected from the README, the course map,
the model cards, the package's own messages and the console command's table,
each run with ``--help``; each CLI also runs once on a tiny real input (slow)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cmalign.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "notebooks").glob("*.md")),
    *sorted((ROOT / "data").glob("*/README.md")),
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "cmalign").rglob("*.py")),
]
MODULE = re.compile(r"python -m ((?:cmalign|benchmarks)(?:\.[a-z_]+)*)")
CONSOLE = re.compile(r"(?<![\w/.-])cmalign ([a-z][a-z-]+)\b(?! *\()")


def documented_commands(paths=DOCS) -> dict[str, set[str]]:
    """``python -m MODULE`` and ``cmalign SUBCOMMAND`` forms -> the files that name them."""
    found: dict[str, set[str]] = {}
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for module in MODULE.findall(text):
            found.setdefault(f"python -m {module}", set()).add(path.name)
        for sub in CONSOLE.findall(text):
            if sub in COMMANDS or "`cmalign " + sub in text:
                found.setdefault(f"cmalign {sub}", set()).add(path.name)
    return found


def _argv(command: str) -> list[str]:
    words = command.split()
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    return [sys.executable, "-m", "cmalign.cli", *words[1:]]


# One interpreter answers every ``--help`` (a fresh interpreter per command spent
# about 10 s each importing torch on a busy CI machine). Each command runs as
# ``python -m`` would run it (runpy, as ``__main__``) or through the console
# command's own ``main``; its exit status and output are collected per command.
HELP_RUNNER = r"""
import contextlib, io, json, runpy, sys, traceback
results = {}
for command in json.loads(sys.argv[1]):
    words = command.split()
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if words[0] == "python":
                sys.argv = [words[2], "--help"]
                runpy.run_module(words[2], run_name="__main__", alter_sys=True)
            else:
                from cmalign.cli import main
                code = main([*words[1:], "--help"])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
    results[command] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()[-2000:]}
print(json.dumps(results))
"""


def answers_to_help(commands) -> dict[str, dict]:
    """``COMMAND --help`` for each command, in one fresh interpreter: exit code and output."""
    out = subprocess.run(
        [sys.executable, "-c", HELP_RUNNER, json.dumps(sorted(commands))],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def help_answers() -> dict[str, dict]:
    return answers_to_help(documented_commands())


def test_the_docs_name_the_commands_we_ship():
    found = documented_commands()
    for command in (
        "python -m cmalign.toy.train",
        "python -m cmalign.evaluate",
        "python -m cmalign.toy.negclip",
        "python -m cmalign.standin",
        "python -m benchmarks.run",
    ):
        assert command in found, f"{command} is no longer documented"
    # every console sub-command is documented too
    for sub in COMMANDS:
        assert f"cmalign {sub}" in found, f"cmalign {sub} is not in the docs"


@pytest.mark.parametrize("command", sorted(documented_commands()))
def test_every_documented_command_answers_help(command, help_answers):
    answer = help_answers[command]
    where = ", ".join(sorted(documented_commands()[command]))
    assert answer["code"] == 0, f"`{command} --help` (named in {where}) failed:\n{answer['stderr']}"
    assert "usage" in answer["stdout"].lower()


def test_the_collector_catches_a_broken_command(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("Rebuild it with `python -m cmalign.toy.trian --out x`.\n"
                   "Or `cmalign toy-trian --out x`.\n")
    commands = documented_commands([doc])
    assert set(commands) == {"python -m cmalign.toy.trian", "cmalign toy-trian"}
    answers = answers_to_help(commands)
    assert answers["python -m cmalign.toy.trian"]["code"] != 0
    assert "No module named cmalign.toy.trian" in answers["python -m cmalign.toy.trian"]["stderr"]
    assert answers["cmalign toy-trian"]["code"] == 2


def test_a_real_interpreter_runs_the_commands_as_typed():
    """The runner above is not the shell: one command and the console command,
    each in its own interpreter, as a user types them."""
    out = subprocess.run([*_argv("python -m cmalign.evaluate"), "--help"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0 and "usage" in out.stdout.lower(), out.stderr[-2000:]
    out = subprocess.run(_argv("cmalign no-such"), capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "unknown command 'no-such'" in out.stderr


@pytest.mark.slow
def test_toy_train_runs_on_a_tiny_input(tmp_path):
    out = subprocess.run(
        _argv("cmalign toy-train")
        + ["--out", str(tmp_path / "m"), "--steps", "3", "--batch-size", "16",
           "--n-train", "64", "--eval-every", "2", "--eval-n", "32", "--device", "cpu"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "m" / "metrics.json").exists()
    assert (tmp_path / "m" / "model.safetensors").exists()


@pytest.mark.slow
def test_toy_negclip_runs_on_a_tiny_input(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "cmalign.toy.negclip", "--out", str(tmp_path / "n"),
         "--forward-steps", "2", "--mixed-steps", "2", "--eval-n", "32"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "n" / "metrics.json").exists()


@pytest.mark.slow
def test_standin_runs(tmp_path):
    out = subprocess.run(
        _argv("cmalign standin") + ["--cache", str(tmp_path / "hub")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HF_HUB_CACHE=" in out.stdout

"""Every command the docs name runs: collected from the README, the course map,
the model cards, the package's own messages and the console command's table,
each run with ``--help``; each CLI also runs once on a tiny real input (slow)."""

from __future__ import annotations

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
def test_every_documented_command_answers_help(command):
    out = subprocess.run(
        [*_argv(command), "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    where = ", ".join(sorted(documented_commands()[command]))
    assert out.returncode == 0, f"`{command} --help` (named in {where}) failed:\n{out.stderr[-2000:]}"
    assert "usage" in out.stdout.lower()


def test_the_collector_catches_a_broken_command(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("Rebuild it with `python -m cmalign.toy.trian --out x`.\n")
    (command,) = documented_commands([doc])
    out = subprocess.run([*_argv(command), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0


def test_unknown_console_command_is_named():
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

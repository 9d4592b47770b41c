"""The README cannot rot: every fenced block marked runnable is run against a live gateway.

A block is runnable when the line just before its fence is ``<!-- readme-test: run -->``:
``sh`` blocks run in bash (``set -euo pipefail``), ``python`` blocks in this interpreter.
A ``python`` block marked ``<!-- readme-test: pytest -->`` is a user's test module: it is
written to a file and run by pytest, with the ussdsim plugin loaded as any user gets it.
Each ``##`` section gets a fresh ``ussdsim serve`` (its own state file, in a temporary
directory that is the block's working directory, so ``ussdsim.sqlite3.token`` is where the
README says), and the section's blocks run in document order, as a reader would run them.
The README's default ports (SMPP 2775, HTTP 8775) are rewritten to the free ports this
gateway got; shell variables assigned in earlier runnable blocks (``API=…``) are carried
into later ones, like a reader's terminal.  A block passes when it exits 0, prints no
traceback and no control-API error object (``"error":``).

Two shell blocks are not marked, on purpose: the README's opening two commands (install and
serve, install and run this suite: ``.ci/run`` runs the second verbatim on a clean checkout,
and the first's ``serve`` is what every section here starts) and the Development block
(this suite again, plus ruff and mypy, which ``tests/test_codebase.py`` runs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKS = {"<!-- readme-test: run -->": "run", "<!-- readme-test: pytest -->": "pytest"}
BLOCK_TIMEOUT = 60.0
QUIET = ("--log-level", "warning")


@attrs.frozen
class Block:
    section: str
    line: int
    language: str
    body: str
    how: str = "run"


def runnable_blocks(text: str) -> list[Block]:
    """The marked fenced blocks of a Markdown text, with their section and first line."""
    blocks: list[Block] = []
    section = ""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:].strip()
        how = MARKS.get(line.strip())
        if how and index + 1 < len(lines) and lines[index + 1].startswith("```"):
            language = lines[index + 1][3:].strip().split(" ")[0]
            end = index + 2
            while not lines[end].startswith("```"):
                end += 1
            body = "\n".join(lines[index + 2 : end]) + "\n"
            blocks.append(
                Block(section=section, line=index + 3, language=language, body=body, how=how)
            )
            index = end
        index += 1
    return blocks


def test_runnable_blocks_are_found_with_their_sections() -> None:
    """The block finder takes only marked blocks, with their language and section."""
    text = "\n".join(
        [
            "## One",
            "```sh",
            "echo unmarked",
            "```",
            "<!-- readme-test: run -->",
            "```sh",
            "echo a",
            "```",
            "## Two",
            "<!-- readme-test: run -->",
            "```python",
            "print(1)",
            "```",
            "<!-- readme-test: pytest -->",
            "```python",
            "def test_x(): pass",
            "```",
        ]
    )
    found = runnable_blocks(text)
    assert [(b.section, b.language, b.body, b.line, b.how) for b in found] == [
        ("One", "sh", "echo a\n", 7, "run"),
        ("Two", "python", "print(1)\n", 12, "run"),
        ("Two", "python", "def test_x(): pass\n", 16, "pytest"),
    ]


class Served:
    def __init__(self, proc: subprocess.Popen[str], smpp_port: int, http_port: int) -> None:
        self.proc, self.smpp_port, self.http_port = proc, smpp_port, http_port

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def serve(workdir: Path) -> Served:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", "0", "--http-port", "0", *QUIET],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    smpp = http = None
    seen: list[str] = []
    while smpp is None or http is None:
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"serve stopped before saying where it listens: {seen}")
        seen.append(line)
        if found := re.search(r"SMPP 3\.4 on [\d.]+:(\d+)", line):
            smpp = int(found.group(1))
        if found := re.search(r"control API on http://[\d.]+:(\d+)/", line):
            http = int(found.group(1))
    return Served(proc, smpp, http)


def localise(body: str, served: Served) -> str:
    """The block as it runs here: the README's default ports become this gateway's."""
    body = re.sub(r"\b8775\b", str(served.http_port), body)
    return re.sub(r"\b2775\b", str(served.smpp_port), body)


ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=.*$", re.MULTILINE)


def run_block(block: Block, prelude: str, served: Served, workdir: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "USSDSIM_API": f"http://127.0.0.1:{served.http_port}",
        "USSDSIM_SMPP": f"127.0.0.1:{served.smpp_port}",
    }
    body = localise(block.body, served)
    if block.how == "pytest":
        module = workdir / f"test_readme_line_{block.line}.py"
        module.write_text(body, encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", module.name]
    elif block.language == "sh":
        command = ["bash", "-c", "set -euo pipefail\n" + localise(prelude, served) + body]
    elif block.language == "python":
        command = [sys.executable, "-c", body]
    else:
        raise AssertionError(f"README line {block.line}: cannot run a {block.language!r} block")
    done = subprocess.run(
        command,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    output = done.stdout + done.stderr
    where = f"README line {block.line} ({block.section}):\n{block.body}\n--- output ---\n{output}"
    assert done.returncode == 0, f"exit {done.returncode} in {where}"
    assert "Traceback" not in output, where
    assert '"error":' not in done.stdout, where


def sections() -> Iterator[tuple[str, list[Block]]]:
    grouped: dict[str, list[Block]] = {}
    for block in runnable_blocks(README.read_text(encoding="utf-8")):
        grouped.setdefault(block.section, []).append(block)
    yield from grouped.items()


SECTIONS = list(sections())


def test_readme_has_runnable_blocks() -> None:
    """The README marks its commands runnable (an unmarked README would test nothing)."""
    assert len(SECTIONS) >= 3
    assert sum(len(blocks) for _, blocks in SECTIONS) >= 6


@pytest.mark.parametrize(("section", "blocks"), SECTIONS, ids=[name for name, _ in SECTIONS])
def test_readme_section_commands_run(section: str, blocks: list[Block], tmp_path: Path) -> None:
    """Each marked block of the section runs cleanly, in order, against a fresh gateway."""
    all_blocks = [b for _, bs in SECTIONS for b in bs]
    served = serve(tmp_path)
    try:
        for block in blocks:
            earlier = [b for b in all_blocks if b.line < block.line and b.language == "sh"]
            prelude = "".join(line + "\n" for b in earlier for line in ASSIGNMENT.findall(b.body))
            run_block(block, prelude, served, tmp_path)
    finally:
        served.stop()

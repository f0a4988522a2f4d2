"""Every command transcript in README.md and docs/ is run, so the docs cannot go stale.

A transcript is a fenced ``console`` block: lines starting with ``$ cluster-sim`` are commands,
the lines after each are its output (stdout, then stderr). ``...`` in the expected output stands
for any number of lines. Lines are compared after folding table borders and runs of white space,
so a column that grows by one character does not fail the test, but every number does. A command
whose expected output starts with ``error:`` must exit 2; every other must exit 0. The ``sim.wall_s``
row is the one value not compared (it is the host's wall clock).

Commands in ``bash`` blocks (README's tour) are parsed by the real argument parser and every file
they name must exist.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster_sim.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TRACES = Path(os.environ.get("CLUSTER_SIM_TRACES", REPO.parent / "shared" / "traces"))
_FOLD = re.compile(r"[\s│┃┏┓┗┛┡┩└┘━─╇┳┻╋┼┬┴╭╮╰╯]+")
_VOLATILE = ("sim.wall_s",)


@dataclass(frozen=True)
class Transcript:
    where: str
    argv: tuple[str, ...]
    expected: tuple[str, ...]


def _blocks(path: Path, lang: str) -> list[tuple[int, list[str]]]:
    out: list[tuple[int, list[str]]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{lang}":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            out.append((start + 1, body))
        i += 1
    return out


def _argv(command: str) -> tuple[str, ...]:
    words = shlex.split(command, comments=True)
    assert words and words[0] == "cluster-sim", command
    return tuple(words[1:])


def transcripts() -> list[Transcript]:
    found: list[Transcript] = []
    for path in DOCS:
        for first, body in _blocks(path, "console"):
            current: tuple[str, tuple[str, ...]] | None = None
            expected: list[str] = []
            for k, line in enumerate(body):
                if line.startswith("$ "):
                    if current is not None:
                        found.append(Transcript(current[0], current[1], tuple(expected)))
                    current, expected = (f"{path.relative_to(REPO)}:{first + k}", _argv(line[2:])), []
                elif current is not None:
                    expected.append(line)
            if current is not None:
                found.append(Transcript(current[0], current[1], tuple(expected)))
    return found


def _fold(line: str) -> str:
    return _FOLD.sub(" ", line).strip()


def _matches(expected: list[str], actual: list[str]) -> tuple[bool, str]:
    """Match with ``...`` as a wildcard for any lines; return (ok, first mismatch)."""
    exp = [_fold(x) for x in expected if _fold(x) or x.strip() == ""]
    act = [_fold(x) for x in actual]
    exp = [x for x in exp if x]
    act = [x for x in act if x]

    def ok(e: str, a: str) -> bool:
        if any(v in e for v in _VOLATILE):
            return any(v in a for v in _VOLATILE)
        return e == a

    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[i, j]
        if i == len(exp):
            res = j == len(act)
        elif exp[i] == "...":
            res = any(match(i + 1, k) for k in range(j, len(act) + 1))
        else:
            res = j < len(act) and ok(exp[i], act[j]) and match(i + 1, j + 1)
        memo[i, j] = res
        return res

    if match(0, 0):
        return True, ""
    # first expected line (not a wildcard) that appears nowhere in the output, for the message
    missing = next((e for e in exp if e != "..." and not any(ok(e, a) for a in act)), None)
    return False, f"expected line not in output: {missing!r}" if missing else "lines out of order"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory laid out like the repo (workloads/, topologies/, ../shared/traces)."""
    root = tmp_path_factory.mktemp("docs")
    work = root / "repo"
    work.mkdir()
    for name in ("workloads", "topologies", "examples"):
        (work / name).symlink_to(REPO / name)
    if TRACES.is_dir():
        (root / "shared").mkdir()
        (root / "shared" / "traces").symlink_to(TRACES)
    return work


ALL = transcripts()


def test_the_docs_have_transcripts():
    where = {t.where.split(":")[0] for t in ALL}
    assert "docs/cli.md" in where and "README.md" in where, where
    assert len(ALL) >= 12


@pytest.mark.parametrize("t", ALL, ids=[t.where for t in ALL])
def test_transcript(t: Transcript, sandbox: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    if any("shared/traces" in a for a in t.argv) and not TRACES.is_dir():
        pytest.skip(f"traces not found at {TRACES}")
    monkeypatch.chdir(sandbox)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    code = main(list(t.argv))
    cap = capsys.readouterr()
    actual = (cap.out + cap.err).splitlines()
    wants_error = any(line.startswith("error:") for line in t.expected)
    assert code == (2 if wants_error else 0), f"{t.where}: exit {code}\n{cap.out[-2000:]}{cap.err[-2000:]}"
    if t.expected:
        ok, why = _matches(list(t.expected), actual)
        assert ok, f"{t.where}: cluster-sim {' '.join(t.argv)}: {why}\n--- actual ---\n" + "\n".join(actual)


def _bash_commands() -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for path in DOCS:
        for first, body in _blocks(path, "bash"):
            joined: list[tuple[int, str]] = []
            for k, line in enumerate(body):
                if joined and joined[-1][1].endswith("\\"):
                    joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + line.strip())
                else:
                    joined.append((k, line.strip()))
            for k, line in joined:
                if line.startswith("cluster-sim "):
                    found.append((f"{path.relative_to(REPO)}:{first + k}", _argv(line)))
    return found


BASH = _bash_commands()


@pytest.mark.parametrize("where,argv", BASH, ids=[w for w, _ in BASH])
def test_bash_commands_parse_and_name_real_files(where: str, argv: tuple[str, ...]) -> None:
    if "--help" in argv or "-h" in argv:
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(list(argv))
        assert exc.value.code == 0, where
        return
    args = build_parser().parse_args(list(argv))
    assert callable(args.handler), where
    for word in argv:
        if re.search(r"\.(ya?ml|toml|csv|jsonl|gz)$", word):
            path = (REPO / word).resolve()
            if "shared/traces" in word:
                path = TRACES / word.split("shared/traces/", 1)[1]
                if not TRACES.is_dir():
                    continue
            assert path.is_file(), f"{where}: {word} does not exist"


def test_matcher_catches_a_changed_number():
    assert _matches(["a 1", "...", "z 3"], ["a 1", "b", "c", "z 3"])[0]
    assert not _matches(["a 1", "...", "z 3"], ["a 1", "b", "z 4"])[0]
    assert not _matches(["a 1"], ["a 1", "extra"])[0]
    assert _matches(["│ x │ 1.0 │"], ["│ x  │  1.0 │"])[0]

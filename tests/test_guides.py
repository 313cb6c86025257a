"""The guides run: every ```python and ```bash block of the docs pages is
executed, page by page, in order, in a fresh interpreter (a page's Python
blocks share one namespace, as a reader's session would; its bash blocks run
in the same working folder), so a guide cannot drift from the code.

A block that cannot run in a test (a 5-minute job, a launch on several
machines, the test suite itself) is marked just before its fence with
`<!-- not-run: REASON -->`; the reason is required, and the exemptions are
counted below. Output shown to readers goes in ```text blocks, which are not
run. Any other fence (no language, an unknown one) fails the check, so that
nothing is skipped silently."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUN = {"python", "bash"}
SHOWN = {"text"}
# Every exemption in the docs, counted: a new one must be added here too.
EXEMPTIONS = 9

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^`\n]*)$")
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:?(?P<reason>.*?)-->\s*$")


def pages():
    """The docs pages that hold code: all but the generated API reference."""
    return sorted(p for p in DOCS.rglob("*.md") if "api" not in p.relative_to(DOCS).parts)


def blocks(text):
    """The fenced blocks of a Markdown text: dicts with `lang`, `code`,
    `line` (1-based, the opening fence) and `not_run` (the reason given in
    a `<!-- not-run: ... -->` line right before the fence, else None)."""
    lines = text.splitlines()
    found, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, info = match.group("indent"), match.group("info").strip()
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = NOT_RUN.match(before)
        found.append({"lang": info.split()[0] if info else "", "code": "\n".join(body) + "\n",
                      "line": start + 1,
                      "not_run": marker.group("reason").strip() if marker else None})
        i += 1
    return found


def check(text):
    """The problems of a page's blocks: unknown fences, reasonless exemptions."""
    problems = []
    for block in blocks(text):
        where = f"line {block['line']}"
        if block["lang"] not in RUN | SHOWN:
            problems.append(f"{where}: fence '{block['lang']}' is neither run "
                            f"({sorted(RUN)}) nor shown ({sorted(SHOWN)})")
        if block["not_run"] is not None and not block["not_run"]:
            problems.append(f"{where}: a not-run block needs its reason")
        if block["not_run"] is not None and block["lang"] in SHOWN:
            problems.append(f"{where}: a text block is never run; drop its not-run marker")
    return problems


def driver(text, name):
    """A Python script that runs the blocks of page `name` (its `text`) in order."""
    out = ["import subprocess, sys", "_namespace = {'__name__': '__main__'}"]
    for block in blocks(text):
        if block["lang"] not in RUN or block["not_run"] is not None:
            continue
        where = f"{name}:{block['line']}"
        out.append(f"print('--- {where} ({block['lang']})', flush=True)")
        if block["lang"] == "python":
            out.append(f"exec(compile({block['code']!r}, {where!r}, 'exec'), _namespace)")
        else:
            out.append(f"_done = subprocess.run(['bash', '-euo', 'pipefail', '-c', "
                       f"{block['code']!r}])")
            out.append(f"if _done.returncode: sys.exit(f'{where}: bash block failed "
                       "with status {_done.returncode}')")
    return "\n".join(out) + "\n"


def test_every_block_runs_or_says_why():
    problems, exempt = [], []
    for page in pages():
        name = page.relative_to(ROOT)
        problems += [f"{name} {p}" for p in check(page.read_text())]
        exempt += [f"{name}:{b['line']}: {b['not_run']}" for b in blocks(page.read_text())
                   if b["not_run"] is not None]
    assert not problems, "\n".join(problems)
    assert len(exempt) == EXEMPTIONS, "exemptions changed:\n" + "\n".join(exempt)
    runnable = sum(b["lang"] in RUN and b["not_run"] is None
                   for p in pages() for b in blocks(p.read_text()))
    assert runnable >= 20


def test_the_check_catches_what_it_should():
    text = ("<!-- not-run: -->\n```python\nx = 1\n```\n\n```\nplain\n```\n\n"
            "<!-- not-run: takes an hour -->\n```bash\nsleep 3600\n```\n\n"
            "  ```python\n  y = 2\n  ```\n")
    found = blocks(text)
    assert [b["lang"] for b in found] == ["python", "", "bash", "python"]
    assert found[2]["not_run"] == "takes an hour" and found[3]["code"] == "y = 2\n"
    assert [p.split(":")[0] for p in check(text)] == ["line 2", "line 6"]


def test_a_failing_block_fails_its_page(tmp_path):
    text = ("```python\nx = 1\n```\n\n```bash\necho ran > out.txt\n```\n\n"
            "```python\nassert x == 2, 'the guide drifted'\n```\n")
    done = subprocess.run([sys.executable, "-c", driver(text, "drift.md")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "the guide drifted" in done.stderr
    assert "drift.md:9" in done.stderr  # the traceback names the page and line
    assert (tmp_path / "out.txt").read_text() == "ran\n"


def _environment():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg",
               PYTHONPATH=str(ROOT))
    env.pop("KERAS_BACKEND", None)  # a page that needs JAX says so itself
    # The `speechmix` command of the interpreter running the tests.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@pytest.mark.parametrize("page", [p for p in pages() if any(
    b["lang"] in RUN and b["not_run"] is None for b in blocks(p.read_text()))],
    ids=lambda p: str(p.relative_to(DOCS)))
def test_page_runs(page, tmp_path):
    # The reader runs the guides from the repository root: the examples and
    # benchmarks are there (read only); everything written goes to tmp_path.
    for name in ("examples", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name)
    done = subprocess.run([sys.executable, "-c", driver(page.read_text(), str(page.relative_to(ROOT)))],
                          cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (f"{page.relative_to(ROOT)} failed:\n"
                                  f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}")

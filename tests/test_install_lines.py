"""Every install line the docs and examples show works from a clone as written, with the index form beside it.

The lines are read from the files themselves: README.md, examples/ (READMEs, scripts, the Dockerfile,
the Collector configs) and docs/. A line that installs this package from a clone (``-e .``, ``'.[x]'``,
the Dockerfile's ``/src[x]``) must name only extras pyproject.toml defines, and each file that shows
the index form (``opentelemetry-exporter-opik``) shows the clone form too. ``pip install --dry-run``
then resolves each clone line (network: marked ``frameworks``).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "examples").rglob("*")), *sorted((ROOT / "docs").glob("*.md"))]
_LINE = re.compile(r"pip install ((?:[^\n\\]|\\+\n)+)")
#: where the command ends in its line: markdown, shell, a comment, prose
_ENDS = ("`", " &&", " #", " (", " in a clone", ";")


def _pyproject_extras() -> set:
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^(\w[\w-]*) = \[", block, re.M))


def install_lines() -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for path in FILES:
        if not path.is_file() or path.suffix in (".json", ".mjs") or "node_modules" in path.parts:
            continue
        for m in _LINE.finditer(path.read_text(errors="replace")):
            args = re.sub(r"\\+\n", " ", m.group(1))
            for end in _ENDS:
                args = args.split(end, 1)[0]
            args = " ".join(args.split())
            out.setdefault(str(path.relative_to(ROOT)), []).append(args)
    return out


def _is_clone(args: str) -> bool:
    return bool(re.search(r"(^|\s)(-e\s+)?'?(\.|/src)(\[[\w,]+\])?'?(\s|$)", args))


def test_each_file_with_the_index_form_shows_the_clone_form_and_its_extras_exist() -> None:
    extras = _pyproject_extras()
    lines = install_lines()
    assert len(lines) >= 8, lines
    for name, found in lines.items():
        ours = [a for a in found if "opentelemetry-exporter-opik" in a or _is_clone(a)]
        if not ours:
            continue  # a line for another tool (zstandard, grpcio)
        assert any(_is_clone(a) for a in ours), (name, found)
        for args in ours:
            for group in re.findall(r"(?:\.|/src|opentelemetry-exporter-opik)\[([\w,]+)\]", args):
                assert set(group.split(",")) <= extras, (name, args)


@pytest.mark.frameworks
def test_every_clone_install_line_resolves_as_written() -> None:
    seen = set()
    for name, found in install_lines().items():
        for args in found:
            if not _is_clone(args) or "/src" in args or args in seen:
                continue
            seen.add(args)
            argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", *shlex.split(args)]
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, (name, args, proc.stderr[-2000:])
    assert len(seen) >= 6, seen

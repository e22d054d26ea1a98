"""Which install a measurement stands for, and how the harness imitates the others.

Every benchmark process runs in the project's venv, which has every extra
installed. The other installs are imitated by hiding modules before anything
imports them (``sys.modules[name] = None`` makes ``import name`` raise
``ImportError``, so the package takes the same fallback a missing dependency
would give it):

* ``every-extra``: nothing hidden (orjson, isal, httptools, grpcio);
* ``default``: what ``pip install opentelemetry-exporter-opik`` gives: the
  optional modules that are not runtime dependencies are hidden. Which ones
  that is, is read from ``pyproject.toml`` of the source tree measured, so the
  label stays true when a dependency moves from an extra to the defaults;
* ``stdlib``: orjson and isal hidden as well: the stdlib-json and zlib fallback
  the package keeps for platforms without their wheels.

``python benchmarks/installs.py HIDE -m module args...`` (or ``HIDE script.py
args...``) runs a module or script with the comma-separated modules hidden;
``-`` hides nothing.
"""

from __future__ import annotations

import os
import re
import runpy
import sys
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: optional modules the package uses when present: import name -> distribution name
OPTIONAL = {"orjson": "orjson", "isal": "isal", "httptools": "httptools", "grpc": "grpcio"}
#: the stdlib fallback hides these whatever the dependencies say
STDLIB_HIDDEN = ("orjson", "isal")
INSTALLS = ("every-extra", "default", "stdlib")


#: set by ``use_tree``: the tree measured as "this tree" when it is not this checkout
_TREE_ENV = "OPIK_BENCH_TREE"


def tree() -> str:
    """The root of the tree measured as the current one (``use_tree``), else this checkout."""
    return os.environ.get(_TREE_ENV) or ROOT


def use_tree(src: Optional[str]) -> None:
    """Measure the package in ``src`` (a tree's ``src/``, e.g. a ``git worktree``) instead of this checkout's.

    Sets ``PYTHONPATH`` (found before the editable install) for every process started
    afterwards, and the tree whose ``pyproject.toml`` labels the installs.
    """
    if not src:
        return
    src = os.path.abspath(src)
    if not os.path.isdir(os.path.join(src, "opentelemetry", "exporter", "opik")):
        raise SystemExit(f"--src {src}: no opentelemetry/exporter/opik package there (give the tree's src/)")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = src + (os.pathsep + old if old else "")
    os.environ[_TREE_ENV] = os.path.dirname(src)


def runtime_dependencies(src_root: Optional[str] = None) -> List[str]:
    """Distribution names in ``[project] dependencies`` of ``src_root/pyproject.toml``."""
    import tomllib

    with open(os.path.join(src_root or tree(), "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"].get("dependencies", [])
    return [re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0].lower() for d in deps]


def hidden_for(install: str, src_root: Optional[str] = None) -> Tuple[str, ...]:
    """The import names hidden to imitate ``install`` for the tree at ``src_root``."""
    if install == "every-extra":
        return ()
    deps = set(runtime_dependencies(src_root))
    hidden = [mod for mod, dist in OPTIONAL.items() if dist not in deps]
    if install == "stdlib":
        hidden += [m for m in STDLIB_HIDDEN if m not in hidden]
    elif install != "default":
        raise ValueError(f"unknown install {install!r}; choose from {', '.join(INSTALLS)}")
    return tuple(hidden)


def describe(install: str, src_root: Optional[str] = None) -> Dict[str, object]:
    """The install's label and what it has, for tables and JSON."""
    hidden = hidden_for(install, src_root)
    have = [m for m in OPTIONAL if m not in hidden]
    deps = set(runtime_dependencies(src_root))
    if install == "every-extra":
        label = "every extra (orjson, isal, httptools, grpcio)"
    elif install == "default":
        label = "default install (" + (", ".join(m for m in have) or "no optional modules") + ")"
    else:
        label = "stdlib fallback (json, zlib; orjson and isal hidden)"
    return {
        "install": install,
        "label": label,
        "hidden": list(hidden),
        "present": have,
        "runtime_dependencies_optional": sorted(d for d in OPTIONAL.values() if d in deps),
    }


#: what each part of the package can use: the exporter never imports httptools or grpc
EXPORTER_MODULES = ("orjson", "isal")
SIDECAR_MODULES = ("orjson", "isal", "httptools")


def groups(relevant: Sequence[str], src_root: Optional[str] = None) -> List[Tuple[List[str], Tuple[str, ...]]]:
    """The installs that differ for code using only ``relevant`` modules, each measured once.

    Returns ``(install names, modules to hide)`` pairs: installs that hide the same
    relevant modules run the same code, so one measurement stands for all of them
    (with the hidden set of the first, ``default`` before the others).
    """
    out: List[Tuple[List[str], Tuple[str, ...]]] = []
    keys: List[frozenset] = []
    for install in ("default", "every-extra", "stdlib"):
        hidden = hidden_for(install, src_root)
        key = frozenset(hidden) & frozenset(relevant)
        if key in keys:
            out[keys.index(key)][0].append(install)
        else:
            keys.append(key)
            out.append(([install], hidden))
    return out


def group_label(names: Sequence[str], src_root: Optional[str] = None) -> str:
    """One label for installs measured together, e.g. ``default install (...) = every extra``."""
    return " = ".join(str(describe(n, src_root)["label"]) for n in names)


def hide(names: Sequence[str]) -> None:
    """Make ``import name`` fail for each name (call before the package is imported)."""
    for name in names:
        if name in sys.modules and sys.modules[name] is not None:
            raise RuntimeError(f"{name} was imported before it could be hidden")
        sys.modules[name] = None  # type: ignore[assignment]


def launcher(hidden: Sequence[str]) -> List[str]:
    """argv prefix running the rest of a command with ``hidden`` modules hidden."""
    return [sys.executable, os.path.abspath(__file__), ",".join(hidden) or "-"]


def main(argv: Optional[List[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        raise SystemExit("usage: installs.py HIDE (-m module | script.py) [args...]")
    names = [n for n in args[0].split(",") if n and n != "-"]
    hide(names)
    if args[1] == "-m":
        sys.argv = [args[2]] + args[3:]
        runpy.run_module(args[2], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args[1:]
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[1])))
        runpy.run_path(args[1], run_name="__main__")


def git_commit(root: Optional[str] = None) -> str:
    """Short commit of a tree, with a note when its src/ has uncommitted changes."""
    import subprocess

    where = root or tree()
    r = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--", "src"], capture_output=True, text=True)
    return (r.stdout.strip() or "?") + (" + uncommitted changes in src/" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    main()

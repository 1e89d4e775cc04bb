"""The packaging promises: pins that agree with each other and an import direction that holds."""

import ast
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ["dbsam", "pirads", "mvcnet", "sepclr"]


def _pins(lines):
    return dict(re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", ln).groups()
                for ln in lines if re.match(r"[A-Za-z0-9_.\-]+==", ln))


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_environment_yml_mirrors_constraints():
    cons = {_norm(k): v for k, v in _pins(
        ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()).items()}
    env = _pins(ln.strip().lstrip("- ") for ln in (ROOT / "environment.yml").read_text()
                .splitlines())
    assert env, "environment.yml lists no pins"
    for name, version in env.items():
        assert cons.get(_norm(name)) == version, f"{name}: environment.yml {version}, " \
            f"constraints.txt {cons.get(_norm(name))}"


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cons = {_norm(k) for k in _pins((ROOT / "constraints.txt").read_text().splitlines())}
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    for dep in deps:
        name = _norm(re.match(r"[A-Za-z0-9_.\-]+", dep).group(0))
        assert name in cons, f"{name} has no exact pin in constraints.txt"


def _imports(path):
    """Absolute import names in ``path``, ``medcl.`` prefix and all."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "medcl":  # ``from medcl import io`` names the sub-package
                yield from (f"medcl.{a.name}" for a in node.names)
            else:
                yield node.module


def _layer(name):
    """The medcl layer an import name belongs to (``"medcl"`` for the front door), else None."""
    parts = name.split(".")
    if parts[0] in APPS + ["contrastive", "medio"]:  # an old bare name counts as a violation
        return parts[0]
    if parts[0] != "medcl":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "medcl"


LAYERS = APPS + ["contrastive", "io", "util"]


def _layers_imported(path):
    return {layer for layer in map(_layer, _imports(path)) if layer}


def test_import_direction():
    for path in (ROOT / "shared").rglob("*.py"):
        bad = _layers_imported(path) - {"contrastive", "io", "util"}
        assert not bad, f"{path}: shared code imports {bad}"
        if path.is_relative_to(ROOT / "shared" / "util"):
            assert not _layers_imported(path) - {"util"}, f"{path}: medcl.util imports a layer"
        if path.is_relative_to(ROOT / "shared" / "contrastive"):
            assert "io" not in _layers_imported(path), f"{path}: medcl.contrastive imports medcl.io"
    for app in APPS:
        for path in (ROOT / "apps" / app).rglob("*.py"):
            bad = _layers_imported(path) - {app, "contrastive", "io", "util"}
            assert not bad, f"{path}: app {app} imports {bad}"


def test_import_direction_check_catches_violations(tmp_path):
    """The layer check above is only as good as ``_layer``: it must see each form of import."""
    src = tmp_path / "m.py"
    src.write_text("import medcl.dbsam.model\nfrom medcl import io\nfrom medcl.cli import app\n"
                   "from contrastive import functional\nimport numpy\nfrom . import x\n")
    assert _layers_imported(src) == {"dbsam", "io", "medcl", "contrastive"}


def test_every_import_name_is_under_medcl():
    for path in [*(ROOT / "apps").rglob("*.py"), *(ROOT / "shared").rglob("*.py"),
                 *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]:
        old = {n for n in _imports(path) if n.split(".")[0] in APPS + ["contrastive", "medio"]}
        assert not old, f"{path}: imports {old} outside the medcl namespace"


def test_package_map_covers_every_source_package():
    """setup.py's map must list each folder of the layout, so no sub-package is left out."""
    text = (ROOT / "setup.py").read_text()
    for folder in [*(ROOT / "apps").iterdir(), *(ROOT / "shared").iterdir()]:
        if (folder / "__init__.py").is_file():
            assert f'"{folder.relative_to(ROOT).as_posix()}"' in text, f"{folder} not in setup.py"


@pytest.mark.slow
def test_wheel_installs_only_the_medcl_import_name(tmp_path):
    """Build the wheel, install it (no ``-e``) into a fresh venv that borrows this environment's
    dependencies, and check its top-level names and that ``medcl --help`` and the cards work."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(ROOT)], check=True)
    wheel = next(dist.glob("medcl-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        tops = {name.split("/")[0] for name in zf.namelist()}
        names = zf.namelist()
    assert {t for t in tops if not t.endswith(".dist-info")} == {"medcl"}
    assert "medcl/io/data_cards/sklearn_digits.yaml" in names
    for sub in LAYERS:
        assert f"medcl/{sub}/__init__.py" in names

    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    py = env / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Dependencies come from this environment's site-packages, appended as a plain path: its
    # .pth files (the editable medcl finder among them) are not run in the new venv.
    deps = sysconfig.get_path("purelib")
    Path(site, "_deps.pth").write_text(deps + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True)
    probe = ("import medcl, medcl.io, medcl.contrastive, medcl.dbsam, medcl.pirads, medcl.mvcnet, "
             "medcl.sepclr; print(medcl.__file__)")
    where = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True,
                           cwd=tmp_path).stdout
    assert where.startswith(site), where
    top = subprocess.run([str(py), "-c", _TOP_LEVEL], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout.split()
    assert top == ["medcl"], top
    out = subprocess.run([str(env / "bin" / "medcl"), "--help"], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    for name in APPS + ["cards", "demo", "info"]:
        assert name in out
    cards = subprocess.run([str(env / "bin" / "medcl"), "cards", "list"], capture_output=True,
                           text=True, check=True, cwd=tmp_path).stdout
    assert "sklearn_digits" in cards


_TOP_LEVEL = """
from importlib.metadata import distribution
files = distribution("medcl").files
print(" ".join(sorted({f.parts[0] for f in files if f.suffix == ".py" or f.name == "__init__.py"}
                      - {"..", "bin"})))
"""

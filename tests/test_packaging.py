"""The packaging promises: pins that agree with each other and an import direction that holds."""

import ast
import re
import tomllib
from pathlib import Path

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
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_import_direction():
    for path in (ROOT / "shared").rglob("*.py"):
        bad = set(_imports(path)) & set(APPS + ["medcl"])
        assert not bad, f"{path}: shared code imports apps {bad}"
    for path in (ROOT / "shared" / "contrastive").rglob("*.py"):
        assert "medio" not in set(_imports(path)), f"{path}: contrastive imports medio"
    for app in APPS:
        for path in (ROOT / "apps" / app).rglob("*.py"):
            bad = set(_imports(path)) & (set(APPS + ["medcl"]) - {app})
            assert not bad, f"{path}: app {app} imports {bad}"

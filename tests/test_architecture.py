"""The house rules, read from the code's own imports: one-way floors, unique module names, no stray SDKs."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "retrieval", "storage", "sandbox", "bench", "deploy", "tests")
VENDOR_SDKS = (
    "boto3",
    "botocore",
    "slack_sdk",
    "slack_bolt",
    "langchain_aws",
    "langchain_core",
    "qdrant_client",
    "qdrant_edge",
    "onnxruntime",
    "sqlalchemy",
    "alembic",
)
# floor of each room of bot/: a module may import its own floor or lower ones only
FLOORS = {
    "bot.entry": 1,
    "bot.wiring": 2,
    "bot.slack": 3,
    "bot.writing": 4,
    "bot.drawing": 4,
    "bot.scheduling": 4,
    "bot.engine": 5,
    "bot.config": 6,
    "bot.log_redaction": 6,
}


def modules(package: str) -> dict[str, Path]:
    """Dotted module name -> file for every .py file of a top-level folder."""
    found = {}
    for path in sorted((REPO / package).rglob("*.py")):
        if ".venv" in path.parts or "__pycache__" in path.parts:
            continue
        dotted = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        found[dotted] = path
    return found


def imports_of(path: Path) -> set[str]:
    """Absolute module names a file imports, at any depth (lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def room_of(module: str) -> str | None:
    """The bot/ room a module belongs to (its FLOORS key), or None outside bot/."""
    for room in sorted(FLOORS, key=len, reverse=True):
        if module == room or module.startswith(room + "."):
            return room
    return None


def test_no_two_modules_share_a_base_name() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for dotted, path in modules(package).items():
            if path.name in ("__init__.py", "__main__.py", "conftest.py") or "migrations" in path.parts:
                continue
            seen[path.stem].append(dotted)
    shared = {name: where for name, where in seen.items() if len(where) > 1}
    assert shared == {}


def test_bot_has_a_handful_of_top_level_modules_and_every_package_says_its_job() -> None:
    top = sorted(p.name for p in (REPO / "bot").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "config.py", "log_redaction.py", "wiring.py"]
    for package in ("bot", "retrieval", "storage", "sandbox"):
        for init in (REPO / package).rglob("__init__.py"):
            docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            assert docstring, f"{init.relative_to(REPO)} has no docstring saying its job"


def test_imports_inside_bot_run_one_way() -> None:
    upward = []
    for dotted, path in modules("bot").items():
        source = room_of(dotted)
        if source is None:
            continue
        for name in imports_of(path):
            target = room_of(name)
            if target is not None and FLOORS[target] < FLOORS[source]:
                upward.append(f"{dotted} -> {name}")
    assert upward == []


@pytest.mark.parametrize("room", ["bot.engine", "bot.scheduling", "bot.config"])
def test_no_vendor_sdk_below_the_adapters(room: str) -> None:
    found = [
        f"{dotted} -> {name}"
        for dotted, path in modules("bot").items()
        if room_of(dotted) == room
        for name in imports_of(path)
        if name.split(".")[0] in VENDOR_SDKS
    ]
    assert found == []


def test_the_app_never_imports_the_sandbox_and_bench_never_imports_tests() -> None:
    into_sandbox = [
        dotted
        for dotted, path in modules("bot").items()
        if not dotted.startswith("bot.entry.cli.demo")
        and any(n.split(".")[0] == "sandbox" for n in imports_of(path))
    ]
    assert into_sandbox == []
    for package in ("bot", "retrieval", "storage", "sandbox", "bench"):
        leaks = [
            d for d, p in modules(package).items() if any(n.split(".")[0] == "tests" for n in imports_of(p))
        ]
        assert leaks == [], f"{package} imports from tests/"


def test_the_rules_see_real_imports() -> None:
    """The scan finds the arrows it should (so the checks above cannot pass by finding nothing)."""
    assert "bot.engine.ports" in imports_of(REPO / "bot" / "writing" / "offline_composer.py")
    assert room_of("bot.slack.handlers.buttons") == "bot.slack"
    assert any(
        n.startswith("sandbox") for n in imports_of(REPO / "bot" / "entry" / "cli" / "demo" / "run.py")
    )

"""The package's layout: no import cycle between dmkeras modules, counting imports made inside
functions too (a lazy import is still a dependency), the installed package holds no
benchmark or PyTorch code, and the test files mirror the modules they test."""

import ast
import pathlib
import re

import dmkeras

PACKAGE = pathlib.Path(dmkeras.__file__).parent
REPO = pathlib.Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
# tests/<folder>/ mirrors this source folder; tests/integration/ tests the whole (README, layout,
# parity with the reference, recipes end to end).
MIRRORS = {
    TESTS: REPO / "dmkeras", TESTS / "data": REPO / "dmkeras" / "data",
    TESTS / "data" / "sources": REPO / "dmkeras" / "data" / "sources",
    TESTS / "launch": REPO / "launch", TESTS / "tools": REPO / "tools",
}


def _module_name(path: pathlib.Path) -> str:
    parts = ("dmkeras", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """module -> the dmkeras modules it imports anywhere in its source. The package's own
    `__init__` ("dmkeras": lazy re-exports) is left out: every module may name its parent."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    stem = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(stem + ([base] if base else []))
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {m for m in found if m in modules and m not in (name, "dmkeras")}
    return {name: deps for name, deps in graph.items() if name != "dmkeras"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of nodes (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_lazy_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_dmkeras_modules():
    graph = import_graph()
    assert "dmkeras.export" in graph["dmkeras.zoo"]  # zoo loads exports; export never imports zoo
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_installed_package_holds_no_benchmark_and_no_pytorch():
    assert not [name for name in _modules() if "bench" in name]
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.split(".")[0] == "torch" for m in imported), f"{name} imports PyTorch"


def _named_module(stem: str, source: pathlib.Path) -> str | None:
    """The module of `source` that test file `test_<module>[_<topic>].py` names (the longest match);
    a subpackage counts only where no test folder of its own mirrors it (tools/bench)."""
    mirrored = set(MIRRORS.values())
    names = {p.stem for p in source.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in source.iterdir() if (p / "__init__.py").exists() and p not in mirrored}
    topic = stem.removeprefix("test_")
    found = [n for n in names if topic == n or topic.startswith(n + "_")]
    return max(found, key=len) if found else None


def test_the_mirror_rule_takes_the_longest_module_name(tmp_path):
    for name in ("model", "model_extra", "data"):
        (tmp_path / f"{name}.py").write_text("")
    assert _named_module("test_model_tracing", tmp_path) == "model"
    assert _named_module("test_model_extra_case", tmp_path) == "model_extra"
    assert _named_module("test_modelling", tmp_path) is None
    assert _named_module("test_data_pipeline", PACKAGE) is None  # dmkeras/data has tests/data/


def test_test_files_mirror_the_modules_they_test():
    stray, checked = [], 0
    for path in sorted({*TESTS.rglob("test_*.py"), *TESTS.rglob("*_test.py")}):
        folder = path.parent
        if folder == TESTS / "integration":
            continue
        source = MIRRORS.get(folder)
        checked += 1
        if source is None or _named_module(path.stem, source) is None:
            stray.append(str(path.relative_to(REPO)))
    assert checked > 40, f"only {checked} test files found under {TESTS}"
    assert not stray, f"test files that name no module of the folder they mirror: {stray}"


def _flags_named_in_raises(source: str) -> list[str]:
    """The `--flag` words in the string parts of every `raise` of a module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for part in ast.walk(node.exc):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    found += re.findall(r"(?<![\w-])--[a-z][a-z0-9_]*", part.value)
    return found


def test_the_flag_finder_reads_plain_and_formatted_messages():
    assert _flags_named_in_raises('raise E(f"bad {x}: lower --lr")\nraise E("a -- b, x--y")') == ["--lr"]


def test_library_errors_name_config_fields_not_flags():
    """dmkeras is a library: its errors name config fields (`lambda_u must be >= 0`), and launch/
    writes them as flags (`ConfigError.as_flags`). A flag in a library message is wrong for a
    Python user, who has none."""
    named = {str(path.relative_to(PACKAGE.parent)): flags for path in PACKAGE.rglob("*.py")
             if (flags := _flags_named_in_raises(path.read_text()))}
    assert named == {}

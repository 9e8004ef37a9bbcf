"""The layout the README's code map describes: on top only what users run (and options.py, their
command lines), libraries in folders, and imports that only go down: no cycle, no entry point
imported by anything, models/ and data/ (and util/) blind to the layers above them. The imports
are read from the source (every `import`, a function's own included), nothing is executed."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = {"train", "test", "colorize", "serve", "export"}
TOP_LEVEL = ENTRY_POINTS | {"options"}
# A package -> the packages (and top-level modules) it may import.
ALLOWED = {
    "util": {"util"},
    "data": {"data", "util"},
    "models": {"models", "util"},
}


def project_modules():
    """{dotted name: path} of every module of the project, tests and the virtual environment aside."""
    modules = {}
    packages = [d for d in ROOT.iterdir() if (d / "__init__.py").is_file() and d.name != "tests"]
    for path in [*ROOT.glob("*.py"), *(p for d in packages for p in d.rglob("*.py"))]:
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def imports_of(path, name, modules):
    """The project modules a module imports, wherever in it the import is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # the longest project module the name starts with: `from data.limits import X` is data.limits
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # an empty package __init__ is only a namespace: the edge goes to the module named in it
            if target and target != name and not (modules[target].name == "__init__.py"
                                                  and not modules[target].read_text().strip()):
                found.add(target)
    return found


def graph():
    modules = project_modules()
    return {name: imports_of(path, name, modules) for name, path in modules.items()}


def test_the_top_level_holds_only_what_users_run_and_their_options():
    top = {p.stem for p in ROOT.glob("*.py")}
    assert top == TOP_LEVEL, f"top-level modules beyond the scripts and options.py: {sorted(top - TOP_LEVEL)}"


def test_no_module_imports_an_entry_point_or_a_tool():
    edges = graph()
    wrong = [f"{a} imports {b}" for a, targets in edges.items() for b in targets
             if b in ENTRY_POINTS or (b.startswith("tools") and not a.startswith("tools"))]
    assert not wrong, wrong


def test_models_data_and_util_do_not_import_the_layers_above_them():
    edges = graph()
    wrong = [f"{a} imports {b}" for a, targets in edges.items() for b in targets
             if a.split(".")[0] in ALLOWED and b.split(".")[0] not in ALLOWED[a.split(".")[0]]]
    assert not wrong, wrong


def find_cycle(edges):
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_imports_form_no_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_checks_catch_what_they_look_for():
    """The checks themselves: a planted cycle is found, and a planted upward edge is refused."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    edges = graph()
    assert {"models.checkpoint", "util.atomic"} <= set(edges)  # the graph sees the packages' modules
    assert "models.colorization" in edges["inference.loading"]
    assert "inference.photo_io" in edges["options"]  # `from inference.photo_io import FORMATS`

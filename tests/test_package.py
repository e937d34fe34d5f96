"""The package's shape: layers without a circle, small modules, and no UI stack needed to import it."""

import ast
import subprocess
import sys
from pathlib import Path

import chatkit

PACKAGE = Path(chatkit.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _chatkit_imports(path):
    """[(imported chatkit module, at top level?)] for every import of a chatkit module in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .sizing import x
                names = [node.module.split(".")[0]]
            elif node.level == 1:  # from . import sizing
                names = [alias.name for alias in node.names]
            elif node.module and node.module.split(".")[0] == "chatkit":
                names = [node.module.split(".")[1]] if "." in node.module else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("chatkit.")]
        found += [(name, id(node) in top) for name in names if name in MODULES]
    return found


def test_every_import_between_chatkit_modules_sits_at_the_top_of_its_module():
    inside_functions = {
        module: [name for name, at_top in _chatkit_imports(PACKAGE / f"{module}.py") if not at_top]
        for module in MODULES
    }
    assert {m: names for m, names in inside_functions.items() if names} == {}


def test_the_modules_form_layers_without_a_circle():
    graph = {m: {name for name, _ in _chatkit_imports(PACKAGE / f"{m}.py")} for m in MODULES}
    order, done, visiting = [], set(), []

    def visit(module):
        if module in done:
            return
        assert module not in visiting, f"import circle: {' -> '.join(visiting + [module])}"
        visiting.append(module)
        for dependency in sorted(graph[module]):
            visit(dependency)
        visiting.pop()
        done.add(module)
        order.append(module)

    for module in MODULES:
        visit(module)
    assert sorted(order) == MODULES


# The layers of chatkit/__init__.py's docstring, bottom first: a module imports from lower layers only.
LAYERS = (
    {
        "chat",
        "chat_view",
        "catalog",
        "dtypes",
        "formatting",
        "held_out",
        "recorded",
        "quality",
        "plotting",
        "llama_cpp",
        "quiz",
        "checking",
        "pictures",
    },
    {"hub", "picture_questions"},
    {"machine"},
    {"counting"},
    {"sizing"},
    {"memory", "loading"},
    {"environment", "generation", "templating"},
    {"speed", "tools", "serving"},
    {"toy_models", "assisted", "fast_decoding", "thinking"},
    {"chat_window"},
    {"widgets", "doctor", "prefetch", "exercises"},
    {"__main__"},
)


def test_each_module_imports_only_from_lower_layers():
    assert set().union(*LAYERS) == set(MODULES), "a new module needs its place in LAYERS"
    layer = {module: index for index, group in enumerate(LAYERS) for module in group}
    upward = [
        f"{module} imports {name}"
        for module in MODULES
        for name, _ in _chatkit_imports(PACKAGE / f"{module}.py")
        if layer[name] >= layer[module]
    ]
    assert upward == []


# exercises holds three short checks for every notebook: it grows with the course, not with what it does
LONGEST = {"exercises": 600}


def test_no_module_is_over_450_lines():
    lengths = {m: len((PACKAGE / f"{m}.py").read_text(encoding="utf-8").splitlines()) for m in MODULES}
    assert {m: n for m, n in lengths.items() if n > LONGEST.get(m, 450)} == {}


def test_the_package_docstring_names_every_module():
    missing = [m for m in MODULES if m not in chatkit.__doc__]
    assert missing == []


def _python_without(module, code):
    """Run `code` in a fresh Python where importing `module` fails as if it were not installed."""
    blocker = (
        "import sys\n"
        "class Missing:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {module!r} or name.startswith({module!r} + '.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, Missing())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", blocker + code], capture_output=True, text=True, timeout=120, cwd=PACKAGE.parent
    )


def test_chatkit_and_sizing_work_without_ipywidgets():
    result = _python_without(
        "ipywidgets",
        (
            "import chatkit\n"
            "from chatkit import sizing\n"
            "print(sizing.estimate_memory(8e9, 'bf16', context_length=0).weights)\n"
            "try:\n"
            "    chatkit.ChatWidget(None, None)\n"
            "except ImportError as error:\n"
            "    print(error)\n"
        ),
    )
    assert result.returncode == 0, result.stderr
    weights, message = result.stdout.splitlines()
    assert weights == "16000000000"
    assert "pip install ipywidgets" in message


def test_import_chatkit_loads_no_heavy_library():
    code = (
        "import sys, chatkit\n"
        "print(sorted(m for m in ('torch', 'transformers', 'huggingface_hub', 'ipywidgets', 'PIL') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=PACKAGE.parent
    )
    assert result.stdout.strip() == "[]", result.stderr

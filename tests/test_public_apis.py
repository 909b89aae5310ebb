"""privrec uses other libraries through their public APIs only: no private modules, no patching."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
OWN = ("privrec", "hydra_plugins.privrec_launcher")
#: Attributes the standard library documents as replaceable by programs.
DOCUMENTED_HOOKS = {"sys.argv", "warnings.formatwarning", "warnings.showwarning"}


def _modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # `from pkg import _private` imports a private module or name
                yield node.lineno, f"{node.module}.{alias.name}"


def _sources():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30, "the source tree was not found"
    return files


def test_no_private_module_of_another_package_is_imported():
    offenders = []
    for path in _sources():
        for lineno, name in _modules(ast.parse(path.read_text(encoding="utf-8"))):
            if name == OWN[0] or name.startswith(tuple(f"{own}." for own in OWN)) or name in OWN:
                continue
            if any(part.startswith("_") and not part.startswith("__") for part in name.split(".")):
                offenders.append(f"{path.relative_to(SRC)}:{lineno} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_no_attribute_of_another_package_is_assigned():
    """Monkeypatching (``module.attr = ...`` on an imported module or class of another package) is refused."""
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        foreign = {alias.asname or alias.name.split(".")[0]
                   for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                   for alias in node.names
                   if not ((getattr(node, "module", None) or alias.name).startswith(OWN))}
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for target in targets:
                root = target
                while isinstance(root, ast.Attribute):
                    root = root.value
                if (isinstance(target, ast.Attribute) and isinstance(root, ast.Name) and root.id in foreign
                        and ast.unparse(target) not in DOCUMENTED_HOOKS):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} assigns {ast.unparse(target)}")
    assert not offenders, "\n".join(offenders)


def test_the_check_catches_what_it_should(tmp_path):
    sample = "from hydra._internal.hydra import Hydra\nimport joblib.externals.loky\nfrom x import _y\n"
    names = [name for _line, name in _modules(ast.parse(sample))]
    assert "hydra._internal.hydra" in names and "x._y" in names

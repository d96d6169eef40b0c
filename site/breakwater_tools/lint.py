"""An import-linter contract type: no ``_private`` name is imported from another package.

import-linter's own ``private_modules`` contract covers modules named ``_x``; this one covers names:
``from breakwater.content.services import _text`` inside ``breakwater.ads`` breaks it, the same import inside
``breakwater.content`` keeps it. A name a package shares goes public (e.g. into ``breakwater.common``).
Configured in pyproject.toml (``contract_types``) and run by ``make lint``.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _package(module: str, is_package: bool) -> str:
    return module if is_package else module.rpartition(".")[0]


class PrivateNamesContract(Contract):
    type_name = "private_names"

    containers = fields.SetField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        roots = set(self.containers)  # type: ignore[arg-type]
        # Files are found from the root packages' folders: nothing is imported (a broken import must be
        # reported, not raised).
        folders = {root: Path(importlib.util.find_spec(root).submodule_search_locations[0]) for root in roots}
        illegal = []
        for module in sorted(graph.modules):
            root, *rest = module.split(".")
            if root not in roots:
                continue
            base = folders[root].joinpath(*rest)
            is_package = (base / "__init__.py").exists()
            path = base / "__init__.py" if is_package else base.with_suffix(".py")
            if not path.exists():
                continue
            home = _package(module, is_package)
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                    continue
                if node.module.split(".")[0] not in roots:
                    continue
                # the package a name belongs to: the module it is imported from, or that module's package
                source_is_package = bool(graph.find_children(node.module)) if node.module in graph.modules else False
                for alias in node.names:
                    # a submodule belongs to the package it is imported from
                    submodule = f"{node.module}.{alias.name}" in graph.modules
                    owner = node.module if source_is_package or submodule else node.module.rpartition(".")[0]
                    if _private(alias.name) and not (home == owner or home.startswith(owner + ".")):
                        illegal.append(f"{module} (l.{node.lineno}) imports {alias.name} from {node.module}")
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error("A _private name may only be imported from within its own package:", bold=False)
        output.new_line()
        for line in check.metadata["illegal"]:
            output.print_error(f"- {line}", bold=False)
            output.new_line()

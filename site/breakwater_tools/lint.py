"""An import-linter contract type: no ``_private`` name is imported from another package.

import-linter's own ``private_modules`` contract covers modules named ``_x``; this one covers names:
``from breakwater.content.services import _text`` inside ``breakwater.ads`` breaks it, the same import inside
``breakwater.content`` keeps it. A name a package shares goes public (e.g. into ``breakwater.common``).
Configured in pyproject.toml (``contract_types``) and run by ``make lint``.
"""

from __future__ import annotations

import ast
import importlib.util

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
        illegal = []
        for module in sorted(graph.modules):
            if module.split(".")[0] not in roots:
                continue
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                continue
            is_package = bool(spec.submodule_search_locations)
            home = _package(module, is_package)
            with open(spec.origin, encoding="utf-8") as source:
                tree = ast.parse(source.read(), spec.origin)
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                    continue
                if node.module.split(".")[0] not in roots:
                    continue
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    target_is_module = target in graph.modules
                    owner = _package(target, bool(graph.find_children(target))) if target_is_module else node.module
                    if not target_is_module:
                        source = importlib.util.find_spec(node.module)
                        if source is None or not source.submodule_search_locations:
                            owner = node.module.rpartition(".")[0]
                    if _private(alias.name) and not (home == owner or home.startswith(owner + ".")):
                        illegal.append(f"{module} (l.{node.lineno}) imports {alias.name} from {node.module}")
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error("A _private name may only be imported from within its own package:", bold=False)
        output.new_line()
        for line in check.metadata["illegal"]:
            output.print_error(f"- {line}", bold=False)
            output.new_line()

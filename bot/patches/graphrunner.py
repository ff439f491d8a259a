"""The model's graph run node by node in an order worked out once, without dask.

Rasa runs the model's graph (the NLU pipeline, then the policies, several times a
message) through dask's scheduler, and first works out again which nodes the targets
need, walking the graph recursively. The graph is fixed once loaded: the order of the
nodes is worked out once per set of targets and the nodes are called in it. Rasa's
processor loads models with `rasa.core.processor.DaskGraphRunner`; that name is pointed
at the subclass below.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner
from sanic import Sanic

REPLACES = ("rasa.core.processor.DaskGraphRunner",)
CHECKED_RASA_VERSION = "3.6.21"


class SequentialGraphRunner(DaskGraphRunner):
    """A graph runner that calls the needed nodes in an order worked out once."""

    def _order(self, targets: tuple[str, ...]) -> list[str]:
        orders: dict[tuple[str, ...], list[str]] = self.__dict__.setdefault(
            "_clinic_orders", {}
        )
        if targets not in orders:
            nodes, order, seen = self._graph_schema.nodes, [], set()

            def visit(name: str) -> None:  # depth first: needs before the node
                if name in seen or name not in nodes:
                    return
                seen.add(name)
                for need in nodes[name].needs.values():
                    visit(need)
                order.append(name)

            for target in targets:
                visit(target)
            orders[targets] = order
        return orders[targets]

    def run(
        self,
        inputs: dict[str, Any] | None = None,
        targets: list[str] | None = None,
    ) -> dict[str, Any]:
        """The targets' outputs, as DaskGraphRunner.run gives them."""
        run_targets = tuple(targets or self._graph_schema.target_names)
        order = self._order(run_targets)
        results: dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in self._graph_schema.nodes:
                raise GraphRunError(f"Input value '{value}' clashes with a node name.")
            results[name] = (name, value)
        nodes = self._graph_schema.nodes
        try:
            for name in order:
                # A need nobody provides is passed by name, as dask does; the node
                # then reports the missing input.
                needs = [results.get(n, n) for n in nodes[name].needs.values()]
                results[name] = self._instantiated_nodes[name](*needs)
        except RuntimeError as error:
            raise GraphRunError("Error running runner.") from error
        return dict(results[target] for target in run_targets)


def run_graphs_in_order() -> None:
    """Load models with the sequential runner instead of the dask one."""
    import rasa.core.processor as processor

    processor.DaskGraphRunner = SequentialGraphRunner


def install(_app: Sanic) -> None:
    """Apply the patch."""
    run_graphs_in_order()

"""Dependency graphs between segments: one home for cycle detection, waves and build order.

A graph maps each segment name to the names it references (a lookalike's seed, excluded
segments). Spec validation reports the cycles, the Airflow DAG runs the specs in waves and the
``segments build`` command builds what a selection needs: all three used to carry their own walk
over the same graph, and disagreed on what a cycle or an unknown reference does. Pure Python, no
I/O, so the DAG side can import it without loading pyspark.
"""

from __future__ import annotations

from collections.abc import Iterable


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Every elementary cycle reachable in ``graph``, each reported once and closed: ``[a, b, a]``.

    Found by a depth-first walk from the names in sorted order, so the report is deterministic;
    references to names outside the graph are not followed (they are a different error).
    """
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the walk's stack, 2 = finished
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append([*cycle, nxt])
            elif nxt in graph and state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node)
    return found


def blocked_names(graph: dict[str, list[str]]) -> set[str]:
    """Names that can never be built cleanly: in a cycle, referencing an unknown name, or
    depending (directly or not) on such a name."""
    blocked = {n for cycle in find_cycles(graph) for n in cycle}
    blocked |= {n for n, refs in graph.items() if any(r not in graph for r in refs)}
    changed = True
    while changed:
        more = {n for n, refs in graph.items() if n not in blocked and any(r in blocked for r in refs)}
        blocked |= more
        changed = bool(more)
    return blocked


def dependency_waves(graph: dict[str, list[str]]) -> list[list[str]]:
    """The names grouped into waves: a name comes in a later wave than every name it references.

    Names in a cycle, names referencing an unknown name and names depending on either go together
    in one last wave: their own validation rejects them, and putting them last keeps them from
    holding back the others. Within a wave names keep the graph's order.
    """
    blocked = blocked_names(graph)
    level: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in level:  # no cycle reaches here: blocked names are never walked
            refs = graph[name]
            level[name] = 0 if not refs else 1 + max(depth(r) for r in refs)
        return level[name]

    waves: dict[int, list[str]] = {}
    for name in graph:
        if name not in blocked:
            waves.setdefault(depth(name), []).append(name)
    out = [waves[k] for k in sorted(waves)]
    last = [n for n in graph if n in blocked]
    if last:
        out.append(last)
    return out


def topological_order(graph: dict[str, list[str]], names: Iterable[str]) -> list[str]:
    """``names`` plus everything they depend on, dependencies first (ties broken by name).

    Names outside the graph and references to them are skipped. Members of a cycle, and what
    depends on them, are left out: validation reports the cycle and they are never built.
    """
    needed: set[str] = set()

    def add(name: str) -> None:
        if name in needed or name not in graph:
            return
        needed.add(name)
        for dep in graph[name]:
            add(dep)

    for name in names:
        add(name)
    order: list[str] = []
    done: set[str] = set()
    while len(done) < len(needed):
        ready = sorted(n for n in needed - done if all(d in done or d not in needed for d in graph[n]))
        if not ready:  # only cycle members (and their dependents) are left
            break
        order.extend(ready)
        done.update(ready)
    return order

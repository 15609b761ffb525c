"""References between specs, as the graph ``dmp.contracts.graph`` walks.

A spec references another when it excludes that segment's users or seeds a lookalike with it;
either way the other pack (same run date) must be built first. The graph algorithms themselves
(cycles, waves, build order) live in :mod:`dmp.contracts.graph`, shared with the DAG planning.
"""

from __future__ import annotations

from collections.abc import Container, Mapping

from dmp.contracts.graph import topological_order
from dmp.contracts.specs.models import SegmentSpec, spec_references

__all__ = ["dependency_order", "invalid_dependencies", "spec_graph", "spec_references"]


def spec_graph(specs: Mapping[str, SegmentSpec], among: Container[str] | None = None) -> dict[str, list[str]]:
    """Segment name -> the names it references, sorted; only those in ``among`` when given."""
    return {
        name: [d for d in spec.dependencies() if among is None or d in among] for name, spec in specs.items()
    }


def dependency_order(specs: Mapping[str, SegmentSpec], names: list[str]) -> list[str]:
    """``names`` plus everything they depend on, dependencies first (ties by name).

    Cycle members are left out: ``load_specs`` reports the cycle and they are never built.
    """
    return topological_order(spec_graph(specs), names)


def invalid_dependencies(specs: Mapping[str, SegmentSpec], invalid: set[str]) -> dict[str, str]:
    """Spec name -> the invalid segment it depends on, for every spec not in ``invalid`` that
    depends on one directly or through other specs (a spec that cannot be built makes its
    dependents unbuildable too).

    The named dependency is the first one (in name order) found invalid, walking ``specs`` in
    order until nothing changes, so the message is stable across runs.
    """
    bad = set(invalid)
    found: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, spec in specs.items():
            if name in bad:
                continue
            broken = [d for d in spec.dependencies() if d in bad]
            if broken:
                bad.add(name)
                found[name] = broken[0]
                changed = True
    return found

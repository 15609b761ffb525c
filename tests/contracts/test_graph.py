"""Segment dependency graphs: cycles, waves and build order on small hand-made graphs."""

from __future__ import annotations

from dmp.contracts.graph import blocked_names, dependency_waves, find_cycles, topological_order


def test_find_cycles_reports_each_cycle_once_closed() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["d"], "e": ["a"], "f": []}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]


def test_find_cycles_ignores_unknown_refs_and_acyclic_graphs() -> None:
    assert find_cycles({"a": ["b", "zz"], "b": []}) == []
    assert find_cycles({}) == []


def test_find_cycles_two_cycles_through_one_node() -> None:
    graph = {"a": ["b", "c"], "b": ["a"], "c": ["a"]}
    assert find_cycles(graph) == [["a", "b", "a"], ["a", "c", "a"]]


def test_dependency_waves_orders_by_longest_reference_chain() -> None:
    graph = {"look": ["seed"], "seed": [], "vip": [], "both": ["look", "vip"]}
    assert dependency_waves(graph) == [["seed", "vip"], ["look"], ["both"]]


def test_dependency_waves_puts_cycles_unknown_refs_and_their_dependents_last() -> None:
    graph = {
        "ok": [],
        "uses_ok": ["ok"],
        "x": ["y"],
        "y": ["x"],
        "ghost_ref": ["ghost"],
        "after_cycle": ["x"],
        "after_ghost": ["ghost_ref"],
    }
    assert dependency_waves(graph) == [
        ["ok"],
        ["uses_ok"],
        ["x", "y", "ghost_ref", "after_cycle", "after_ghost"],
    ]
    assert blocked_names(graph) == {"x", "y", "ghost_ref", "after_cycle", "after_ghost"}


def test_dependency_waves_empty_and_all_independent() -> None:
    assert dependency_waves({}) == []
    assert dependency_waves({"b": [], "a": []}) == [["b", "a"]]


def test_topological_order_adds_dependencies_first_ties_by_name() -> None:
    graph = {"look": ["seed"], "seed": [], "vip": [], "both": ["look", "vip"], "other": []}
    assert topological_order(graph, ["both"]) == ["seed", "vip", "look", "both"]
    assert topological_order(graph, ["look", "other"]) == ["other", "seed", "look"]


def test_topological_order_skips_unknown_names_and_cycles() -> None:
    graph = {"a": ["b"], "b": ["a"], "c": ["zz"], "d": ["a"]}
    assert topological_order(graph, ["nope", "c"]) == ["c"]
    assert topological_order(graph, ["d"]) == []
    assert topological_order(graph, []) == []

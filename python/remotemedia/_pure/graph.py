"""The validated pipeline graph: what a manifest becomes once no problem is left (mirrors ``src/graph.rs``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .schema import NodeTypeSpec

__all__ = ["GraphNode", "GraphEdge", "Graph"]


@dataclass
class GraphNode:
    id: str
    type: NodeTypeSpec
    #: Declared params with defaults filled in (open params as given).
    params: Dict[str, Any]
    runtime_hint: str = "auto"
    #: The node's own retry and circuit-breaker settings (only the fields given), or None.
    reliability: Optional[Dict[str, Any]] = None
    #: Indices into ``Graph.edges`` of the edges ending here, in manifest order.
    inputs: List[int] = field(default_factory=list)
    #: Indices into ``Graph.edges`` of the edges starting here, in manifest order.
    outputs: List[int] = field(default_factory=list)


@dataclass
class GraphEdge:
    src: int
    dst: int
    #: The part of the source's output this edge carries; None for the whole output.
    output_key: Optional[str]
    #: The input port it feeds, resolved (``in`` for one-input nodes).
    port: str


@dataclass
class Graph:
    nodes: List[GraphNode]
    edges: List[GraphEdge]
    #: Node indices in topological order, ties broken by manifest order.
    order: List[int]
    config: Dict[str, Any]
    #: The manifest's ``outputs`` as node indices, in its order; None when it has no such section.
    declared_outputs: Optional[List[int]] = None

    def sources(self) -> List[int]:
        """Nodes with no incoming edge: they receive the run's input."""
        return [i for i, n in enumerate(self.nodes) if not n.inputs]

    def sinks(self) -> List[int]:
        """Nodes with no outgoing edge."""
        return [i for i, n in enumerate(self.nodes) if not n.outputs]

    def output_nodes(self) -> List[int]:
        """The nodes whose outputs a run returns: the manifest's ``outputs`` in its order, else the
        sinks in manifest order."""
        return list(self.declared_outputs) if self.declared_outputs is not None else self.sinks()

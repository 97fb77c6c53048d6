"""Graphs, masks and Laplacians for the causal track (MATH.md §3).

Convention. A graph on n nodes is a boolean adjacency ``A`` with ``A[i, j] = True``
iff there is an edge j → i ("i receives from j"; for attention: token i may
attend to token j). Undirected graphs are symmetric. No self-loops in graphs;
attention masks (:func:`mask_from_graph`, :func:`causal_mask`) add the diagonal,
since every token must see at least itself.

Constructors return numpy boolean arrays (they are inputs, built once on the
host); random families take an explicit integer ``seed``.

- undirected: :func:`path`, :func:`cycle`, :func:`star`, :func:`complete`,
  :func:`hypercube`, :func:`kary_tree` (``directed=False``);
- directed / DAG: the same with ``directed=True`` (edges point away from node 0,
  or from lower to higher index), :func:`erdos_renyi_dag`, :func:`scale_free_dag`;
- masks and closures: :func:`causal_mask`, :func:`mask_from_graph`,
  :func:`transitive_closure`, :func:`skeleton`, :func:`is_dag`, :func:`check_dag`.

Laplacians (:func:`laplacian`): ``"in"`` L = D_in − A with D_in = diag(Σ_j A_ij)
(the dynamics ρ' = −Lρ moves each node toward the nodes it receives from:
consensus goes to the sources), ``"out"`` the same on the reversed graph; both
are D − A on undirected graphs. ``normalized="rw"`` gives D⁻¹L (rows of nodes
with no in-edges stay zero), ``"sym"`` D^{−1/2} L D^{−1/2} (undirected only).

Spectra (host-side numpy: ``jnp.linalg.eig`` has no GPU kernel and these are
analysis, not hot-path, quantities): :func:`eigenvalues`, :func:`spectral_gap`
(smallest nonzero real part), :func:`fiedler` (λ₂ and its vector, undirected),
:func:`henrici` (departure from normality √(‖L‖_F² − Σ|λ|²), relative to ‖L‖_F) and
:func:`eigenvector_condition` (κ(V) of the eigenvector matrix; ∞ when defective).

Acyclicity (NOTEARS; differentiable, jnp): :func:`acyclicity` h(W) = tr(e^{W∘W}) − n,
zero iff the weighted graph W is a DAG, and :func:`acyclicity_grad` ∇h = (e^{W∘W})ᵀ ∘ 2W.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import expm
from jaxtyping import Array, Float

__all__ = [
    "path",
    "cycle",
    "star",
    "complete",
    "hypercube",
    "kary_tree",
    "erdos_renyi_dag",
    "scale_free_dag",
    "FAMILIES",
    "family",
    "named",
    "causal_mask",
    "mask_from_graph",
    "transitive_closure",
    "skeleton",
    "topological_order",
    "is_dag",
    "check_graph",
    "check_dag",
    "laplacian",
    "acyclicity",
    "acyclicity_grad",
]


def _n(n, name="n", lo=1) -> int:
    if not (isinstance(n, (int, np.integer)) and n >= lo):
        raise ValueError(f"{name} must be an integer ≥ {lo}, got {n!r}.")
    return int(n)


def _from_edges(n: int, edges, directed: bool) -> np.ndarray:
    A = np.zeros((n, n), bool)
    for j, i in edges:  # edge j → i
        A[i, j] = True
        if not directed:
            A[j, i] = True
    return A


def path(n: int, directed: bool = False) -> np.ndarray:
    """0 − 1 − … − (n−1); directed: i → i+1."""
    n = _n(n, lo=2)
    return _from_edges(n, [(i, i + 1) for i in range(n - 1)], directed)


def cycle(n: int, directed: bool = False) -> np.ndarray:
    """The n-cycle (n ≥ 3); directed: i → i+1 mod n (not a DAG)."""
    n = _n(n, lo=3)
    return _from_edges(n, [(i, (i + 1) % n) for i in range(n)], directed)


def star(n: int, directed: bool = False) -> np.ndarray:
    """Centre 0 joined to 1..n−1; directed: 0 → i (one source, the leader)."""
    n = _n(n, lo=2)
    return _from_edges(n, [(0, i) for i in range(1, n)], directed)


def complete(n: int, directed: bool = False) -> np.ndarray:
    """K_n; directed: j → i for every j < i (the causal mask without its diagonal)."""
    n = _n(n, lo=2)
    A = np.tril(np.ones((n, n), bool), k=-1)
    return A if directed else A | A.T


def hypercube(k: int) -> np.ndarray:
    """The k-cube Q_k on 2^k nodes (undirected): i ~ j iff their binary codes differ in one bit."""
    k = _n(k, "k")
    n = 2**k
    idx = np.arange(n)
    x = idx[:, None] ^ idx[None, :]
    return (x > 0) & ((x & (x - 1)) == 0)


def kary_tree(depth: int, k: int = 2, directed: bool = False) -> np.ndarray:
    """Complete k-ary tree of the given depth (root 0, breadth-first numbering); directed: parent → child."""
    depth, k = _n(depth, "depth", lo=0), _n(k, "k")
    n = sum(k**level for level in range(depth + 1))
    return _from_edges(n, [((i - 1) // k, i) for i in range(1, n)], directed)


def _rng(seed) -> np.random.Generator:
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return np.random.default_rng(int(seed))


def erdos_renyi_dag(n: int, p: float, seed: int, permute: bool = False) -> np.ndarray:
    """Random DAG: each pair j < i gets the edge j → i with probability p (topological order = index,
    unless ``permute`` relabels the nodes at random)."""
    n = _n(n, lo=2)
    if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
        raise ValueError(f"edge probability p must be in [0, 1], got {p!r}.")
    rng = _rng(seed)
    A = np.tril(rng.random((n, n)) < p, k=-1)
    if permute:
        perm = rng.permutation(n)
        A = A[np.ix_(perm, perm)]
    return A


def scale_free_dag(n: int, m: int, seed: int) -> np.ndarray:
    """Preferential-attachment DAG: node i ≥ 1 receives edges from min(m, i) earlier nodes chosen with
    probability ∝ (1 + degree) (Barabási–Albert, oriented old → new)."""
    n, m = _n(n, lo=2), _n(m, "m")
    rng = _rng(seed)
    A = np.zeros((n, n), bool)
    deg = np.zeros(n)
    for i in range(1, n):
        w = 1.0 + deg[:i]
        parents = rng.choice(i, size=min(m, i), replace=False, p=w / w.sum())
        A[i, parents] = True
        deg[parents] += 1
        deg[i] += len(parents)
    return A


FAMILIES = ("path", "cycle", "star", "complete", "hypercube", "tree", "er", "sf")


def family(name: str, n: int, *, directed: bool = False, p: float = 0.3, k: int = 2, m: int = 2, seed: int = 0) -> np.ndarray:
    """A graph by family name (for sweeps): n is the node count (hypercube: 2^⌊log₂ n⌋ nodes; tree:
    the complete k-ary tree with at most n nodes). ``er`` and ``sf`` are DAGs (``directed`` ignored)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown graph family {name!r}; use one of {', '.join(FAMILIES)}.")
    n = _n(n, lo=2)
    if name == "path":
        return path(n, directed)
    if name == "cycle":
        return cycle(n, directed)
    if name == "star":
        return star(n, directed)
    if name == "complete":
        return complete(n, directed)
    if name == "hypercube":
        if directed:
            raise ValueError("the hypercube family is undirected; use directed=False.")
        return hypercube(int(math.log2(n)))
    if name == "tree":
        depth = 0
        while sum(k**lv for lv in range(depth + 2)) <= n:
            depth += 1
        return kary_tree(depth, k, directed)
    if name == "er":
        return erdos_renyi_dag(n, p, seed)
    return scale_free_dag(n, m, seed)


# family: (keyword, type, admissible?, what the parameter is)
_PARAM = {
    "tree": ("k", int, lambda v: v >= 1, "K, the arity, an integer ≥ 1"),
    "er": ("p", float, lambda v: 0.0 < v <= 1.0, "P, the edge probability in (0, 1]"),
    "sf": ("m", int, lambda v: v >= 1, "M, the parents per node, an integer ≥ 1"),
}


def named(name: str, n: int, *, directed: bool = False, p: float = 0.3, k: int = 2, m: int = 2, seed: int = 0) -> np.ndarray:
    """A graph from its sweep name ``FAMILY[:ARG][-dag|-directed]`` (one syntax for every graph study).

    FAMILY is one of :data:`FAMILIES`. ARG sets the family's parameter in place of the keyword:
    ``tree:K`` (arity), ``er:P`` (edge probability), ``sf:M`` (parents per node). The suffix makes the
    graph directed (edges from lower to higher index, away from the root), as does ``directed=True``;
    ``er`` and ``sf`` are always DAGs. Examples: ``path``, ``path-dag``, ``tree:3-dag``, ``er:0.5``,
    ``cycle-directed``. Bad names raise ValueError saying the allowed form.
    """
    base, suffix = name, ""
    for s in ("-dag", "-directed"):
        if name.endswith(s):
            base, suffix = name[: -len(s)], s
    fam, sep, arg = base.partition(":")
    if fam not in FAMILIES:
        raise ValueError(f"unknown graph {name!r}: use FAMILY[:ARG][-dag|-directed] with FAMILY one of {', '.join(FAMILIES)} (ARG: tree:K, er:P, sf:M).")
    kw = {"p": p, "k": k, "m": m}
    if sep:
        if fam not in _PARAM:
            raise ValueError(f"graph {name!r}: only tree:K, er:P and sf:M take a parameter.")
        key, typ, ok, what = _PARAM[fam]
        try:
            val = typ(arg)
        except ValueError:
            val = None
        if val is None or not ok(val):
            raise ValueError(f"graph {name!r}: {fam}:{what.split(',')[0]} needs {what}.")
        kw[key] = val
    return family(fam, n, directed=directed or bool(suffix), seed=seed, **kw)


def check_graph(A, *, n: int | None = None, binary: bool = True, name: str = "graph") -> np.ndarray:
    """Validate a square (binary) adjacency; returns it as a numpy array."""
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"a {name} must be a square (n, n) array, got shape {A.shape}.")
    if n is not None and A.shape[0] != n:
        raise ValueError(f"the {name} is {A.shape[0]}×{A.shape[0]} but n = {n}.")
    if binary:
        if A.dtype != bool and not np.isin(A, (0, 1)).all():
            raise ValueError(f"a {name} must be binary (bool or 0/1); got values {np.unique(A)[:5].tolist()}.")
        A = A.astype(bool)
    elif not np.all(np.isfinite(A)):
        raise ValueError(f"a weighted {name} must have finite entries.")
    return A


def transitive_closure(A) -> np.ndarray:
    """R[i, j] = True iff there is a directed path of length ≥ 1 from j to i (repeated boolean squaring)."""
    A = check_graph(A)
    R = A.copy()
    for _ in range(max(1, math.ceil(math.log2(max(A.shape[0], 2))))):
        R = R | ((R.astype(np.int64) @ R.astype(np.int64)) > 0)
    return R


def is_dag(A) -> bool:
    """True iff the directed graph has no cycle (no node reaches itself; self-loops are cycles): every
    strongly connected component is a single node (linear in the edges, unlike a transitive closure)."""
    from scipy.sparse.csgraph import connected_components

    A = check_graph(A)
    return not np.any(np.diag(A)) and connected_components(A, directed=True, connection="strong")[0] == A.shape[0]


def check_dag(A, n: int | None = None) -> np.ndarray:
    """Validate a DAG: square, binary, acyclic; the error names a node on a cycle."""
    A = check_graph(A, n=n, name="DAG")
    R = transitive_closure(A)
    on_cycle = np.flatnonzero(np.diag(R))
    if on_cycle.size:
        raise ValueError(f"the graph is not a DAG: nodes {on_cycle[:10].tolist()} lie on a directed cycle.")
    return A


def topological_order(A) -> np.ndarray:
    """Nodes of a DAG in an order where every edge j → i has j before i.

    Sorted by the number of ancestors (row sums of the transitive closure): an edge j → i
    makes every ancestor of j, and j itself, an ancestor of i, so i has strictly more.
    """
    A = check_dag(A)
    return np.argsort(transitive_closure(A).sum(axis=1), kind="stable")


def skeleton(A) -> np.ndarray:
    """The undirected skeleton A ∨ Aᵀ."""
    A = check_graph(A)
    return A | A.T


def causal_mask(n: int) -> np.ndarray:
    """The causal LLM mask: token i attends to j ≤ i (lower triangular with diagonal)."""
    n = _n(n)
    return np.tril(np.ones((n, n), bool))


def mask_from_graph(A) -> np.ndarray:
    """Attention mask of a graph: A plus self-loops (token i sees itself and the nodes it receives from)."""
    A = check_graph(A)
    return A | np.eye(A.shape[0], dtype=bool)


def laplacian(A, kind: str = "in", normalized: str | None = None) -> np.ndarray:
    """Graph Laplacian (float64) in the conventions of the module docstring; A may be weighted (≥ 0)."""
    A = np.asarray(A, float)
    check_graph(A, binary=False)
    if np.any(A < 0):
        raise ValueError("a Laplacian needs non-negative edge weights.")
    if kind not in ("in", "out"):
        raise ValueError(f"laplacian kind must be 'in' or 'out', got {kind!r}.")
    if normalized not in (None, "rw", "sym"):
        raise ValueError(f"laplacian normalized must be None, 'rw' or 'sym', got {normalized!r}.")
    A = A.copy()
    np.fill_diagonal(A, 0.0)
    if kind == "out":
        A = A.T
    deg = A.sum(axis=1)
    L = np.diag(deg) - A
    if normalized == "rw":
        inv = np.where(deg > 0, 1.0 / np.where(deg > 0, deg, 1.0), 0.0)
        return inv[:, None] * L
    if normalized == "sym":
        if not np.allclose(A, A.T):
            raise ValueError("the symmetric normalisation D^{-1/2} L D^{-1/2} is for undirected graphs; use 'rw'.")
        s = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
        return s[:, None] * L * s[None, :]
    return L


def acyclicity(W: Float[Array, "n n"]) -> Float[Array, ""]:
    """NOTEARS h(W) = tr(e^{W∘W}) − n (differentiable; 0 iff the weighted graph is a DAG)."""
    return jnp.trace(expm(W * W)) - W.shape[-1]


def acyclicity_grad(W: Float[Array, "n n"]) -> Float[Array, "n n"]:
    """∇h(W) = (e^{W∘W})ᵀ ∘ 2W (closed form; tested against autodiff)."""
    return expm(W * W).T * 2.0 * W

"""The collectives, what they cost, and how to find the ones XLA inserted (lesson 03).

Each helper runs one collective over one mesh axis through `jax.shard_map`. To make
what every device holds visible, the arrays carry a leading device axis N (the
mesh axis size): row i of the input is what device i holds before, row i of the
output what it holds after. For N devices and blocks of size k:

    all_gather      [N, k, ...]  -> [N, N*k, ...]   every device gets every block
    reduce_scatter  [N, N*k, ...] -> [N, k, ...]    device i gets block i of the sum
    all_reduce      [N, ...]     -> [N, ...]        every device gets the sum
    all_to_all      [N, N*k, ...] -> [N, N*k, ...]  block j of device i goes to device j,
                                                    where it becomes block i
    ppermute        [N, ...]     -> [N, ...]        device i's row moves to device i+1 (a ring)

Cost model: a ring of n devices, each sending over one link of `link_bw` bytes/s
at a time. m is the largest per-device buffer involved: the gathered array of an
all-gather, the unreduced input of a reduce-scatter, the array being summed by an
all-reduce, each device's buffer for all-to-all and ppermute. Bytes each device sends:

    all-gather      m (n-1)/n      n-1 steps, each passing on one block of m/n
    reduce-scatter  m (n-1)/n      the same steps, adding instead of copying
    all-reduce      2 m (n-1)/n    a reduce-scatter, then an all-gather
    all-to-all      m (n-1)/n      each device keeps one block of n and sends the rest
                                   (one link each way on a switch; on a ring, farther
                                   blocks cross several links and it costs more)
    ppermute        m              each device sends its whole buffer one hop

Time = bytes sent / link_bw. A bidirectional ring or a torus with several links
per chip divides it by the number of links used at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from shared.config import Error

KINDS = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")


# ---- the five collectives, one device per row ----

def _per_device(collective, x: jax.Array, mesh: Mesh, axis: str) -> jax.Array:
    """Run collective(block) on every device, where block = x[i] is device i's row."""
    def body(block):  # block: [1, ...], this device's row
        return collective(block[0])[None]

    return jax.shard_map(body, mesh=mesh, in_specs=P(axis), out_specs=P(axis))(x)


def all_gather(x: jax.Array, mesh: Mesh, axis: str) -> jax.Array:
    """[N, k, ...] -> [N, N*k, ...]: every device ends with all N blocks, in device order."""
    return _per_device(lambda b: jax.lax.all_gather(b, axis, tiled=True), x, mesh, axis)


def reduce_scatter(x: jax.Array, mesh: Mesh, axis: str) -> jax.Array:
    """[N, N*k, ...] -> [N, k, ...]: device i ends with block i of the sum over devices."""
    return _per_device(lambda b: jax.lax.psum_scatter(b, axis, tiled=True), x, mesh, axis)


def all_reduce(x: jax.Array, mesh: Mesh, axis: str) -> jax.Array:
    """[N, ...] -> [N, ...]: every device ends with the sum over devices."""
    return _per_device(lambda b: jax.lax.psum(b, axis), x, mesh, axis)


def all_to_all(x: jax.Array, mesh: Mesh, axis: str) -> jax.Array:
    """[N, N*k, ...] -> [N, N*k, ...]: block j of device i becomes block i of device j."""
    return _per_device(lambda b: jax.lax.all_to_all(b, axis, 0, 0, tiled=True), x, mesh, axis)


def ppermute(x: jax.Array, mesh: Mesh, axis: str, shift: int = 1) -> jax.Array:
    """[N, ...] -> [N, ...]: device i's row moves to device (i + shift) mod N."""
    n = mesh.shape[axis]
    perm = [(i, (i + shift) % n) for i in range(n)]
    return _per_device(lambda b: jax.lax.ppermute(b, axis, perm), x, mesh, axis)


COLLECTIVES = {"all-gather": all_gather, "reduce-scatter": reduce_scatter,
               "all-reduce": all_reduce, "all-to-all": all_to_all, "collective-permute": ppermute}


# ---- overlapping communication with compute by hand ----

def collective_matmul(x: jax.Array, w: jax.Array, mesh: Mesh, axis: str) -> jax.Array:
    """x @ w with x [B, E] and w [E, F] both split by columns over `axis`; returns [B, F] so split.

    jit would all-gather x, then multiply. Here the gather is a ring of N-1 ppermutes,
    and each device multiplies the block of x it holds while the next one travels:
    at step t, device i holds x's column block (i - t) mod N, which meets row block
    (i - t) mod N of its columns of w. The compiler can run each ppermute alongside
    the matmul that does not depend on it (on GPU and TPU; the CPU runs them in turn).
    """
    n = mesh.shape[axis]
    to_right = [(i, (i + 1) % n) for i in range(n)]

    def local(x_block, w_cols):  # x_block [B, E/N], w_cols [E, F/N]
        me = jax.lax.axis_index(axis)
        w_rows = w_cols.reshape(n, x_block.shape[1], w_cols.shape[1])  # [N, E/N, F/N]
        acc = jnp.zeros((x_block.shape[0], w_cols.shape[1]), jnp.float32)  # [B, F/N]
        for step in range(n):
            arriving = jax.lax.ppermute(x_block, axis, to_right) if step < n - 1 else None
            acc += jnp.matmul(x_block, w_rows[(me - step) % n], preferred_element_type=jnp.float32)
            x_block = arriving
        return acc.astype(x.dtype)

    return jax.shard_map(local, mesh=mesh, in_specs=(P(None, axis), P(None, axis)),
                         out_specs=P(None, axis))(x, w)


# ---- the ring cost model ----

def bytes_sent_per_device(kind: str, nbytes: float, n: int) -> float:
    """Bytes each of n devices sends in a ring collective over m = nbytes (see module doc)."""
    if kind not in KINDS:
        raise Error(f"unknown collective {kind!r}; valid: {', '.join(KINDS)}")
    if n <= 1:
        return 0.0
    if kind == "collective-permute":
        return float(nbytes)
    share = nbytes * (n - 1) / n
    return 2 * share if kind == "all-reduce" else share


def collective_seconds(kind: str, nbytes: float, n: int, link_bw: float) -> float:
    """Ring model time: bytes each device sends over its one link of link_bw bytes/s."""
    return bytes_sent_per_device(kind, nbytes, n) / link_bw


# ---- collectives in compiled HLO ----

_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1, "s16": 2, "u16": 2,
                "f16": 2, "bf16": 2, "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8,
                "f64": 8, "c64": 8, "c128": 16}
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT\s+)?%?\S+ = (?P<shape>.+?) (?P<kind>" + "|".join(KINDS) + r")(?P<start>-start)?\(")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?(?P<name>[\w.\-]+) \(")
_CALLEE = re.compile(r"(?:body|calls|to_apply|condition|true_computation|false_computation)=%?([\w.\-]+)")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


@dataclass(frozen=True)
class Collective:
    """One collective instruction of a compiled program, as seen by one device."""
    kind: str  # one of KINDS
    shape: str  # its result shape(s) as XLA prints them, e.g. "f32[64,512]"
    result_bytes: int  # bytes of the result on each device
    group: int  # devices taking part together (for a collective-permute: devices that send)
    count: int = 1  # executions per call: the trip count of enclosing loops

    @property
    def nbytes(self) -> int:
        """m of the cost model: a reduce-scatter's result is 1/group of its input."""
        return self.result_bytes * (self.group if self.kind == "reduce-scatter" else 1)

    @property
    def bytes_sent(self) -> float:
        """Bytes each device sends per call of the program (ring model, all executions)."""
        if self.kind == "collective-permute":  # a sending device sends its whole buffer
            return float(self.count * self.nbytes * (self.group > 0))
        return self.count * bytes_sent_per_device(self.kind, self.nbytes, self.group)


def _shapes(text: str) -> list:
    """'(f32[2,3]{1,0}, s32[])' -> nested lists of (dtype, dims) leaves."""
    stack: list[list] = [[]]
    for m in re.finditer(r"\(|\)|([a-z][a-z0-9]*)\[([0-9,]*)\]", text):
        if m.group(0) == "(":
            stack.append([])
        elif m.group(0) == ")":
            inner = stack.pop()
            stack[-1].append(inner)
        else:
            dims = tuple(int(d) for d in m.group(2).split(",") if d)
            stack[-1].append((m.group(1), dims))
    return stack[0]


def _nbytes(tree) -> int:
    if isinstance(tree, tuple):
        dtype, dims = tree
        return _DTYPE_BYTES.get(dtype, 0) * math.prod(dims)
    return sum(_nbytes(t) for t in tree)


def _iota(dims: list[int], perm: list[int] | None) -> np.ndarray:
    ids = np.arange(math.prod(dims)).reshape(dims)
    return ids.transpose(perm) if perm else ids


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def replica_groups(line: str, num_partitions: int) -> list[list[int]]:
    """The device groups of one collective instruction, in any of XLA's printed forms."""
    if " collective-permute" in line:
        pairs = re.findall(r"\{(\d+),(\d+)\}", line.split("source_target_pairs=", 1)[-1])
        return [[int(s), int(t)] for s, t in pairs if s != t]
    explicit = re.search(r"replica_groups=\{((?:\{[0-9,]*\},?)*)\}", line)
    if explicit and explicit.group(1):
        return [_ints(g) for g in re.findall(r"\{([0-9,]*)\}", explicit.group(1))]
    iota = re.search(r"replica_groups=\[(\d+),(\d+)\]<=\[([0-9,]+)\](?:T\(([0-9,]+)\))?", line)
    if iota:
        ids = _iota(_ints(iota.group(3)), _ints(iota.group(4)) if iota.group(4) else None)
        return ids.reshape(int(iota.group(1)), int(iota.group(2))).tolist()
    named = re.search(r"replica_groups=mesh\[([^\]]*)\]"
                      r"(?:,\s*device_ids=\(\[([0-9,]+)\](?:T\(([0-9,]+)\))?\))?\s*\{([^}]*)\}", line)
    if named:
        sizes = [(k, int(v)) for k, v in re.findall(r"'(\w+)'=(\d+)", named.group(1))]
        shape = [v for _, v in sizes]
        ids = (_iota(_ints(named.group(2)), _ints(named.group(3)) if named.group(3) else None)
               if named.group(2) else np.arange(math.prod(shape))).reshape(shape)
        over = [i for i, (k, _) in enumerate(sizes) if f"'{k}'" in named.group(4)]
        rest = [i for i in range(len(sizes)) if i not in over]
        return ids.transpose(rest + over).reshape(-1, math.prod(shape[i] for i in over)).tolist()
    return [list(range(num_partitions))]  # replica_groups={} or none: every device


def _group_size(line: str, num_partitions: int) -> int:
    """Devices per replica group."""
    return len(replica_groups(line, num_partitions)[0])


def _permute_devices(line: str) -> int:
    """Devices that send in a collective-permute (pairs sending to themselves move nothing)."""
    pairs = re.findall(r"\{(\d+),(\d+)\}", line.split("source_target_pairs=", 1)[-1])
    return len({src for src, dst in pairs if src != dst})


def hlo_collectives(hlo_text: str) -> list[Collective]:
    """The collectives in a compiled program's text (`jitted.lower(...).compile().as_text()`).

    Counts each collective once per execution: an instruction inside a loop body
    (a `lax.scan` over layers) counts the loop's trip count times. Asynchronous
    pairs (`all-gather-start` / `-done`, as on GPU and TPU) are counted at the start.
    """
    partitions = re.search(r"num_partitions=(\d+)", hlo_text)
    num_partitions = int(partitions.group(1)) if partitions else 1
    computations: dict[str, list[str]] = {}
    entry, current = None, None
    for line in hlo_text.splitlines():
        header = _COMPUTATION.match(line)
        if header and line.rstrip().endswith("{"):
            current = header.group("name")
            computations[current] = []
            entry = current if line.startswith("ENTRY") else entry
        elif current is not None and line.startswith("  "):
            computations[current].append(line)

    # How many times each computation runs per call: the entry once, a loop body trip-count times.
    runs: dict[str, int] = {}

    def visit(name: str, times: int) -> None:
        runs[name] = runs.get(name, 0) + times
        for line in computations.get(name, []):
            trips = _TRIP_COUNT.search(line)
            for callee in _CALLEE.findall(line):
                if callee in computations:
                    loop = trips and re.search(r"body=%?" + re.escape(callee) + r"\b", line)
                    visit(callee, times * (int(trips.group(1)) if loop else 1))

    if entry is not None:
        visit(entry, 1)
    found = []
    for name, lines in computations.items():
        for line in lines:
            m = _INSTRUCTION.match(line)
            if not m or runs.get(name, 0) == 0:
                continue
            shapes = _shapes(m.group("shape"))
            if m.group("start") and m.group("kind") != "all-reduce" and len(shapes) == 1 \
                    and isinstance(shapes[0], list) and len(shapes[0]) >= 2:
                shapes = [shapes[0][1]]  # (operands, result, ...): keep the result
            group = (_permute_devices(line) if m.group("kind") == "collective-permute"
                     else _group_size(line, num_partitions))
            shape_text = re.sub(r"\{[0-9,]*\}|/\*.*?\*/", "", m.group("shape"))
            found.append(Collective(m.group("kind"), shape_text, _nbytes(shapes), group, runs[name]))
    return found


def format_bytes(n: float) -> str:
    unit = next((u for u, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)) if n >= size), "B")
    return f"{n / {'GB': 1e9, 'MB': 1e6, 'kB': 1e3, 'B': 1}[unit]:.3g} {unit}"


def summarize(collectives: list[Collective]) -> str:
    """One line: each kind, how many run, bytes each device sends, e.g. '4x all-gather 12 MB'."""
    parts = []
    for kind in KINDS:
        of_kind = [c for c in collectives if c.kind == kind]
        if of_kind:
            sent = sum(c.bytes_sent for c in of_kind)
            parts.append(f"{sum(c.count for c in of_kind)}x {kind} {format_bytes(sent)}")
    return ", ".join(parts) or "none"


def compiled_collectives(fn, *args) -> list[Collective]:
    """The collectives XLA inserted when compiling jitted fn for these (sharded) arguments."""
    return hlo_collectives(fn.lower(*args).compile().as_text())

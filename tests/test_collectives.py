"""The five collectives, the ring cost model and the HLO parser, on 8 simulated CPU devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives as C
from shared.sharding import make_mesh

N = 8
MESH = make_mesh({"x": N}, jax.devices("cpu"))
PERM = [(i, (i + 1) % N) for i in range(N)]

# Each collective as jax.lax defines it, run by vmap over a named axis: no devices involved.
LAX = {
    "all-gather": lambda b: jax.lax.all_gather(b, "i", tiled=True),
    "reduce-scatter": lambda b: jax.lax.psum_scatter(b, "i", tiled=True),
    "all-reduce": lambda b: jax.lax.psum(b, "i"),
    "all-to-all": lambda b: jax.lax.all_to_all(b, "i", 0, 0, tiled=True),
    "collective-permute": lambda b: jax.lax.ppermute(b, "i", PERM),
}
# The same, as numpy on the stacked per-device rows x[i]: the module docstring's definitions.
NUMPY = {
    "all-gather": lambda x: np.broadcast_to(x.reshape(-1, *x.shape[2:]), (N, N * x.shape[1], *x.shape[2:])),
    "reduce-scatter": lambda x: x.sum(0).reshape(N, -1, *x.shape[2:]),
    "all-reduce": lambda x: np.broadcast_to(x.sum(0), x.shape),
    "all-to-all": lambda x: x.reshape(N, N, -1, *x.shape[2:]).swapaxes(0, 1).reshape(x.shape),
    "collective-permute": lambda x: np.roll(x, 1, axis=0),
}
ROW = {"all-gather": (2, 3), "reduce-scatter": (N * 2, 3), "all-reduce": (2, 3),
       "all-to-all": (N * 2, 3), "collective-permute": (2, 3)}


@pytest.mark.parametrize("kind", C.KINDS)
def test_collective_matches_lax_and_numpy(kind):
    x = np.arange(N * np.prod(ROW[kind]), dtype=np.float32).reshape(N, *ROW[kind])
    placed = jax.device_put(x, NamedSharding(MESH, P("x")))
    got = np.asarray(jax.jit(lambda a: C.COLLECTIVES[kind](a, MESH, "x"))(placed))
    lax = np.asarray(jax.vmap(LAX[kind], axis_name="i")(jnp.asarray(x)))
    # Integers below 2^24 in float32, summed over 8 devices: exact.
    np.testing.assert_array_equal(got, lax, err_msg=f"{kind}: shard_map result != jax.lax under vmap")
    np.testing.assert_array_equal(got, NUMPY[kind](x), err_msg=f"{kind}: result != its definition")


@pytest.mark.parametrize("kind", C.KINDS)
def test_each_helper_compiles_to_one_collective_of_size_v(kind):
    x = jax.device_put(jnp.zeros((N, *ROW[kind]), jnp.float32), NamedSharding(MESH, P("x")))
    found = C.compiled_collectives(jax.jit(lambda a: C.COLLECTIVES[kind](a, MESH, "x")), x)
    assert [c.kind for c in found] == [kind], f"{kind}: HLO has {C.summarize(found)}"
    # V: the gathered / unreduced / per-device buffer, in bytes (module docstring).
    rows = ROW[kind][0] * (N if kind == "all-gather" else 1)
    v = rows * ROW[kind][1] * 4
    assert found[0].nbytes == v and found[0].group == N, \
        f"{kind}: parsed V={found[0].nbytes} over {found[0].group} devices, want V={v} over {N}"


def test_ring_bytes():
    v = 800.0
    assert C.bytes_sent_per_device("all-gather", v, 8) == 700, "all-gather sends V(N-1)/N"
    assert C.bytes_sent_per_device("reduce-scatter", v, 8) == 700, "reduce-scatter sends V(N-1)/N"
    assert C.bytes_sent_per_device("all-reduce", v, 8) == 1400, "all-reduce = reduce-scatter + all-gather"
    assert C.bytes_sent_per_device("collective-permute", v, 8) == 800, "ppermute sends its buffer"
    assert C.bytes_sent_per_device("all-reduce", v, 1) == 0, "one device sends nothing"
    assert C.collective_seconds("all-gather", v, 8, link_bw=100.0) == 7.0, "time = bytes / link_bw"
    with pytest.raises(ValueError, match="unknown collective 'gather'"):
        C.bytes_sent_per_device("gather", v, 8)


HLO = """HloModule jit_step, num_partitions=8

%body (p: (s32[], f32[16,64])) -> (s32[], f32[16,64]) {
  %ag = f32[64,64]{1,0} all-gather(f32[16,64]{1,0} %w), channel_id=1, replica_groups=[2,4]<=[8], dimensions={0}
  %ags = (bf16[4,8]{1,0}, bf16[32,8]{1,0}) all-gather-start(bf16[4,8]{1,0} %v), replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_1'}, dimensions={0}
  %agd = bf16[32,8]{1,0} all-gather-done(%ags)
  ROOT %t = (s32[], f32[16,64]) tuple(%i, %ag)
}

%cond (p: (s32[], f32[16,64])) -> pred[] {
  ROOT %lt = pred[] compare(%i, %n), direction=LT
}

ENTRY %main (a: f32[16,64]) -> f32[] {
  %w = (s32[], f32[16,64]) while(%init), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"3"}}
  %rs = f32[2,64]{1,0} reduce-scatter(f32[16,64]{1,0} %a), replica_groups={{0,1,2,3,4,5,6,7}}, dimensions={0}, to_apply=%add
  %cp = f32[16]{0} collective-permute(f32[16]{0} %b), source_target_pairs={{0,1},{1,0}}
  ROOT %ar = f32[] all-reduce(f32[] %s), replica_groups={}, to_apply=%add
}
"""


def test_hlo_parser_reads_groups_loops_and_async_pairs():
    found = {c.kind + ("(bf16)" if "bf16" in c.shape else ""): c for c in C.hlo_collectives(HLO)}
    assert set(found) == {"all-gather", "all-gather(bf16)", "reduce-scatter", "collective-permute",
                          "all-reduce"}, f"found {sorted(found)}"
    ag, ags = found["all-gather"], found["all-gather(bf16)"]
    assert (ag.result_bytes, ag.group, ag.count) == (64 * 64 * 4, 4, 3), \
        f"iota groups [2,4] in a 3-trip loop: got {ag}"
    assert (ags.result_bytes, ags.group, ags.count) == (32 * 8 * 2, 4, 3), \
        f"async start keeps the result; mesh axis_1 has 4 devices: got {ags}"
    rs = found["reduce-scatter"]
    assert (rs.nbytes, rs.group, rs.count) == (16 * 64 * 4, 8, 1), f"reduce-scatter V is its input: {rs}"
    assert found["all-reduce"].group == 8, "empty replica_groups means all num_partitions devices"
    assert found["collective-permute"].bytes_sent == 64, "a ppermute sends its 16 floats once"


def test_collective_matmul_matches_matmul_without_all_gather():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(16, 64)).astype(np.float32), rng.normal(size=(64, 32)).astype(np.float32)
    cols = NamedSharding(MESH, P(None, "x"))
    xs, ws = jax.device_put(x, cols), jax.device_put(w, cols)
    f = jax.jit(lambda a, b: C.collective_matmul(a, b, MESH, "x"))
    # float32 dot products of 64 terms of size ~1: summation-order error well below 1e-4.
    np.testing.assert_allclose(f(xs, ws), x @ w, rtol=1e-4, atol=1e-4,
                               err_msg="collective matmul differs from x @ w")
    kinds = [c.kind for c in C.compiled_collectives(f, xs, ws)]
    assert kinds == ["collective-permute"] * (N - 1), f"want {N - 1} ppermutes and no gather, got {kinds}"

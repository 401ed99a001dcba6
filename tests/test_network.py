"""The network hierarchy (shared.network, lesson 04): the link table, each level's intensity,
where each parallelism fits, and a 2-slice x 4-device mesh whose compiled collectives are
split by mesh axis and checked against the bytes predicted per level."""

import jax
import numpy as np
import pytest

from shared import collectives, hardware, network


# ---- the table ----

def test_every_chip_has_a_sourced_link_row_and_the_old_fields_still_work():
    assert set(hardware.LINKS) == set(hardware.CHIPS)
    for name, links in hardware.LINKS.items():
        assert links.source and links.links >= 1 and links.chips_per_host >= 1, name
        assert links.fast in ("ICI", "NVLink") and links.network in ("DCN", "InfiniBand"), name
    assert hardware.CHIPS["TPU v4"].link_bw == 4.5e10 and hardware.CHIPS["H100"].link_bw == 4.5e11
    assert hardware.lookup("TPU v5 lite").name == "TPU v5e"


@pytest.mark.parametrize("chip", list(hardware.LINKS))
def test_each_level_is_slower_than_the_one_above(chip):
    bw = [network.level_bandwidth(chip, level) for level in ("hbm", "fast", "pcie", "network")]
    assert bw == sorted(bw, reverse=True), f"{chip}: {bw}"
    # so the intensity a level asks for grows as we go down the hierarchy
    assert network.intensity(chip, "hbm") < network.intensity(chip, "fast") < network.intensity(chip, "network")


def test_tpu_v4_intensities_against_the_class_figures():
    got = {level: network.intensity("TPU v4", level) for level in network.CLASS_TPU_V4}
    assert got["hbm"] == pytest.approx(2.75e14 / 1.2e12)  # 229; the class's 224 used 1.23e12
    assert got["hbm"] == pytest.approx(224, rel=0.03)
    assert got["fast"] == pytest.approx(1018, rel=1e-3)  # 6 links x 4.5e10 = 2.7e11 B/s
    assert got["pcie"] == pytest.approx(34375 / 2)  # 1.6e10 per chip; the class's figure implies 8e9
    assert got["network"] == pytest.approx(88000 / 2)  # 6.25e9 per chip; the class's implies v5e's 3.125e9
    assert network.level_bandwidth("TPU v5e", "network") == pytest.approx(3.125e9)


def test_unknown_levels_and_chips_are_one_line_errors():
    with pytest.raises(network.Error, match="unknown level"):
        network.level_bandwidth("H100", "nvlink")
    with pytest.raises(network.Error, match="no link table"):
        network.level_bandwidth("TPU v9", "hbm")


# ---- which parallelism fits where ----

def test_fsdp_over_one_h100_node_matches_lesson_04():
    peak, link = hardware.CHIPS["H100"].flops("bfloat16"), hardware.CHIPS["H100"].link_bw
    assert network.fsdp_tokens(peak, link, 2, 8) == pytest.approx(peak / link * 7 / 8)  # 1,923
    assert network.tp_width(peak, link, 2, 8) == pytest.approx(peak / link * 7)  # 15,384


@pytest.mark.parametrize("chip,n_within", [("TPU v5p", 256), ("H100", 8)])
def test_fsdp_within_and_dp_across_asks_least_of_the_network(chip, n_within):
    rows = {plan: amount for plan, _, _, amount in network.placement_rows(chip, n_within, 2)}
    dp_after_fsdp = rows["DP across slices, FSDP within"]
    assert dp_after_fsdp == pytest.approx(rows["DP across slices, whole weights"] / n_within)
    assert dp_after_fsdp < rows["FSDP across slices too"]  # one all-reduce per step, not three per layer
    assert rows["TP 2-way across slices"] > 10_000  # wider than the models of the course by far


# ---- replica groups in XLA's printed forms ----

@pytest.mark.parametrize("line,groups", [
    ("x = f32[8] all-reduce(y), replica_groups={{0,1},{2,3}}, to_apply=add", [[0, 1], [2, 3]]),
    ("x = f32[8] all-gather(y), replica_groups=[2,4]<=[8], dimensions={0}",
     [[0, 1, 2, 3], [4, 5, 6, 7]]),
    ("x = f32[8] all-gather(y), replica_groups=[4,2]<=[2,4]T(1,0), dimensions={0}",
     [[0, 4], [1, 5], [2, 6], [3, 7]]),
    ("x = f32[8] all-gather(y), replica_groups=mesh['axis_0'=4,'axis_1'=1,'axis_2'=2], "
     "device_ids=([2,4]T(1,0)) {'axis_0'}, dimensions={0}", [[0, 1, 2, 3], [4, 5, 6, 7]]),
    ("x = f32[8] all-reduce(y), replica_groups=mesh['axis_0'=1,'axis_1'=4,'axis_2'=2], "
     "device_ids=([2,4]T(1,0)) {'axis_2'}, to_apply=add", [[0, 4], [1, 5], [2, 6], [3, 7]]),
    ("x = f32[8] all-reduce(y), replica_groups={}, to_apply=add", [list(range(8))]),
    ("x = f32[8] collective-permute(y), source_target_pairs={{0,1},{1,0},{2,2}}", [[0, 1], [1, 0]]),
])
def test_replica_groups(line, groups):
    assert collectives.replica_groups(line, 8) == groups


# ---- the hybrid mesh: 2 slices x 4 devices ----

B, E, L = 256, 128, 2


@pytest.fixture(scope="module")
def hybrid():
    mesh = network.slice_mesh(2, 4)
    ws, x = network.hybrid_init(jax.random.key(0), B, E, L, mesh)
    step = network.hybrid_step(mesh)
    text = step.lower(ws, x).compile().as_text()
    return mesh, ws, x, step, text


def test_jax_hybrid_helper_needs_slices_that_simulated_devices_lack():
    from jax.experimental import mesh_utils
    with pytest.raises(ValueError):
        mesh_utils.create_hybrid_device_mesh((1, 4), (2, 1), jax.devices()[:8])
    grid, how = network.slice_devices(2, 4, jax.devices()[:8])
    assert grid.shape == (2, 4) and "by hand" in how
    assert [d.id for d in grid[1]] == [4, 5, 6, 7]


def test_hybrid_step_computes_the_unsharded_step(hybrid):
    mesh, ws, x, step, _ = hybrid
    got = step(ws, x)
    want = network.sgd_step([np.asarray(w) for w in ws], np.asarray(x))
    for g, w in zip(got, want):
        assert g.sharding.spec == jax.sharding.PartitionSpec(network.DATA, None)
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-5, atol=2e-6)


def test_collectives_split_by_axis_agree_with_compiled_collectives(hybrid):
    mesh, ws, x, step, text = hybrid
    placed = network.placed_collectives(text, mesh)
    compiled = collectives.compiled_collectives(step, ws, x)
    assert [(p.collective.kind, p.collective.shape, p.collective.result_bytes, p.collective.count)
            for p in placed] == [(c.kind, c.shape, c.result_bytes, c.count) for c in compiled]
    for p in placed:  # each collective runs over one axis, its group is that axis
        assert len(p.axes) == 1 and p.collective.group == mesh.shape[p.axes[0]], p
    by_axis = {}
    for p in placed:
        by_axis.setdefault(p.axes[0], set()).add(p.collective.kind)
    assert by_axis == {network.DATA: {"all-gather", "all-reduce"}, network.SLICE: {"all-reduce"}}


def test_bytes_per_level_are_the_prediction(hybrid):
    mesh, ws, x, step, text = hybrid
    got = network.bytes_by_level(network.placed_collectives(text, mesh))
    platform = jax.devices()[0].platform
    want = network.hybrid_step_prediction(B, E, L, 2, 4, 4, network.grad_reduce_for(platform))
    assert got == pytest.approx(want)
    # across slices only each chip's quarter of the gradients: 2 (E^2 b / 4) (2-1)/2 per layer
    assert want["network"] == pytest.approx(L * E * E * 4 / 4)


def test_prediction_with_a_reduce_scatter_sends_a_third_less_within_a_slice():
    ar = network.hybrid_step_prediction(B, E, L, 2, 4, 2, "all-reduce")
    rs = network.hybrid_step_prediction(B, E, L, 2, 4, 2, "reduce-scatter")
    assert rs["network"] == ar["network"] and rs["fast"] == pytest.approx(ar["fast"] * 2 / 3)

"""The FPGA flow: synthesis and place-and-route with the pinned YoWASP tools, block memories inferred."""

import fcntl
import json
from pathlib import Path

import pytest
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from neurohdl.flows import registry
from neurohdl.flows.area import breakdown
from neurohdl.flows.cli import main
from neurohdl.flows.errors import CheckFailed, ConfigError, DoesNotFit, NeurohdlError
from neurohdl.flows.pnr_options import PnrOptions
from neurohdl.flows.synth import CELLS, fit_shortfall, packed_shortfall, synth, synth_design


@pytest.mark.parametrize("target", ["ice40-up5k", "ecp5-25k"])
def test_tiny_synthesises_with_block_ram(target, build_root):
    cfg = registry.resolve("lif", preset="tiny")
    r = synth(cfg, target, pnr=PnrOptions((1, 2)), build_root=build_root / "synth")
    # Weights, accumulators and state sit in block RAM (or, on ECP5, LUT RAM for the shallow ones),
    # not in thousands of flip-flops.
    assert r["bram"] >= 3 if target.startswith("ice40") else r["bram"] + r["lutram"] >= 3, r
    assert 0 < r["lut4"] < r["device"]["luts"] and r["ff"] < 2000
    assert r["fmax_mhz"] and r["fmax_mhz"] > 10
    assert r["wrapper"].startswith("none")
    assert set(r["fmax_per_seed"]) == {1, 2} and r["fmax_max_mhz"] >= r["fmax_mhz"]
    assert json.loads((Path(r["dir"]) / "synth.json").read_text())["seeds"] == [1, 2]


def test_weights_in_spram_when_loaded_through_cfg(build_root):
    cfg = registry.resolve("lif", preset="tiny", sets=["CFG=true", "W_BITS=4", "WMEM_IMPL=spram"])
    r = synth(cfg, "ice40-up5k", build_root=build_root / "synth")
    assert r["spram"] == 1 and r["initial_contents_stripped"] == ["wmem"]
    # regression: the memory-style loop once renamed the design after its last memory
    assert r["block"] == "lif" and Path(r["dir"]).name.startswith("lif-ice40-up5k-")
    again = synth(cfg, "ice40-up5k", build_root=build_root / "synth", reuse=True)
    assert again["reused"] and again["fmax_mhz"] == r["fmax_mhz"] and again["dir"] == r["dir"]
    # another seed: the netlist and seed 1's routing are kept, only seed 2 is placed and routed
    log = []
    more = synth(
        cfg, "ice40-up5k", pnr=PnrOptions((1, 2)), build_root=build_root / "synth", reuse=True,
        progress=log.append,
    )  # fmt: skip
    assert "reused" not in more and set(more["fmax_per_seed"]) == {1, 2}
    assert more["fmax_per_seed"][1] == r["fmax_mhz"] and more["lut4"] == r["lut4"]
    assert not any("yosys" in s for s in log) and [s for s in log if "nextpnr" in s] == [
        "lif: nextpnr-ice40 (seed 2, ice40-up5k)"
    ]


def test_wide_core_gets_the_pin_light_wrapper(build_root, capsys):
    """A core with more port bits than the package has pins is measured inside the wrapper."""
    code = main(
        ["synth", "lif", "--preset", "tiny", "--set", "TRACE=true", "--target", "ice40-up5k", "--json"]
    )
    r = json.loads(capsys.readouterr().out)
    assert code == 0
    assert r["port_bits"] > 39 and "wrapper" in r["wrapper"] and "exceed" in r["wrapper"]
    assert r["bram"] >= 3


class _KeptCopies(wiring.Component):
    """``n`` kept registers of one shift amount (all loaded from ``a``), each driving its own shifter."""

    a: In(6)
    d: In(32)
    o: Out(32)

    def __init__(self, n: int):
        self.n = n
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        outs = []
        for i in range(self.n):
            amount = Signal(6, name=f"amount{i}", attrs={"keep": 1})
            out = Signal(32 // self.n, name=f"out{i}")
            m.d.sync += [amount.eq(self.a), out.eq(self.d.word_select(i, 32 // self.n) >> amount)]
            outs.append(out)
        m.d.comb += self.o.eq(Cat(*outs))
        return m


def test_registers_marked_keep_are_not_merged(build_root):
    r = synth_design("kept", _KeptCopies(4), "ecp5-25k", params={}, build_root=build_root / "synth")
    # four 6-bit copies and the 32 output bits; merged copies would leave 6 + 32
    assert r["ff"] >= 4 * 6 + 32, r


def test_a_seed_that_does_not_route_in_time_is_reported_not_waited_for(build_root):
    core = _KeptCopies(2)
    with pytest.raises(ConfigError, match=r"--route-timeout 0: give minutes > 0"):
        PnrOptions(route_timeout_min=0)
    log = []
    with pytest.raises(
        CheckFailed, match=r"did not finish within 0.001 min at seed\(s\) 1, 2: give it longer"
    ):
        synth_design(
            "kept", core, "ecp5-25k", params={}, pnr=PnrOptions((1, 2), route_timeout_min=0.001),
            build_root=build_root / "synth", progress=log.append,
        )  # fmt: skip
    assert "kept: seed 2 not routed within 0.001 min" in "\n".join(log)


def test_a_seed_given_up_is_not_tried_again_for_no_longer(build_root, tmp_path):
    def run(seeds, minutes, log):
        return synth_design(
            "kept", _KeptCopies(2), "ecp5-25k", params={}, pnr=PnrOptions(seeds, route_timeout_min=minutes),
            build_root=tmp_path, reuse=True, progress=log.append,
        )  # fmt: skip

    first, log = run((1,), None, []), []
    r = run((1, 2), 0.001, log)
    assert r["unrouted_seeds"] == [2] and r["fmax_per_seed"] == {1: first["fmax_mhz"], 2: None}
    assert r["fmax_mhz"] == first["fmax_mhz"] and "kept: seed 2 not routed within 0.001 min" in log[-1]
    log = []
    again = run((1, 2), 0.001, log)
    assert (
        again["reused"] and again["unrouted_seeds"] == [2] and "not routed within 0.001 min before" in log[-1]
    )
    log = []
    run((1, 2), 0.002, log)  # more time than before: seed 2 is tried again
    assert "kept: nextpnr-ecp5 (seed 2, ecp5-25k)" in log


def test_router2_puts_the_ecp5_clock_on_a_clock_pin_beside_router1s_results(tmp_path):
    """router2 cannot route the ECP5 clock from an ordinary pin; its runs keep their own files, so
    router1's results of the same netlist stay reusable."""

    def run(router, log):
        return synth_design(
            "kept", _KeptCopies(2), "ecp5-25k", params={}, pnr=PnrOptions((1,), router), build_root=tmp_path,
            reuse=True, progress=log.append,
        )  # fmt: skip

    first = run("router1", [])
    log = []
    r = run("router2", log)
    assert r["router"] == "router2" and r["clock_pin"] == "P6" and r["fmax_mhz"] > 0
    out = Path(r["dir"])
    assert 'LOCATE COMP "clk" SITE "P6";' in (out / "clock.lpf").read_text()
    assert (out / "report-s1-router2.json").exists() and "--router router2" not in log  # ran, not reused
    assert log[-1] == "kept: nextpnr-ecp5 (seed 1, ecp5-25k)" and first["clock_pin"] is None
    assert run("router1", [])["reused"]


def test_a_design_too_large_names_every_resource_it_lacks():
    """The UP5K 2 x 4 fusemax lacks LUT4s and block RAMs: the error names both, not the first only."""
    cells = {"SB_LUT4": 10189, "SB_RAM40_4K": 34, "SB_MAC16": 8, "SB_DFF": 6000}
    assert fit_shortfall(cells, "ice40-up5k") == (
        "it needs 10189 LUT4 and 34 block RAM cells, the device has 5280 and 30"
    )
    assert fit_shortfall({**cells, "SB_LUT4": 5280, "SB_RAM40_4K": 30}, "ice40-up5k") is None
    assert (
        fit_shortfall({"LUT4": 10, "MULT18X18D": 29}, "ecp5-25k")
        == "it needs 29 DSP cells, the device has 28"
    )


class _Multipliers(wiring.Component):
    """``n`` registered 8 x 8 products of one input pair (a multiplier each: nothing to share)."""

    a: In(8)
    b: In(8)
    o: Out(16)

    def __init__(self, n: int):
        self.n = n
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        acc = Signal(16)
        for i in range(self.n):
            prod = Signal(16, name=f"p{i}")
            m.d.sync += prod.eq(self.a * (self.b + i))
            acc = acc ^ prod
        m.d.comb += self.o.eq(acc)
        return m


def test_a_design_that_does_not_fit_says_how_many_cells_it_needs(build_root):
    """What a design too large needs is reported with the shortfall (the fusemax fpga table shows it),
    including the logic cells it packs into."""
    with pytest.raises(
        DoesNotFit, match=r"it needs 9 DSP cells, the device has 8; packed: \d+ ICESTORM_LC of 5280"
    ) as e:
        synth_design("mults", _Multipliers(9), "ice40-up5k", params={}, build_root=build_root / "synth")
    u = e.value.usage
    assert u["dsp"] == 9 and u["lut4"] > 0 and u["ff"] >= 9 * 16
    assert u["utilization"]["ICESTORM_DSP"] == [9, 8] and u["utilization"]["ICESTORM_LC"][0] >= u["lut4"]
    # where the area goes: the product registers are one group (Yosys renames one of the nine)
    rows = breakdown(Path(u["dir"]) / "top.json", CELLS["ice40"])
    products = next(r for r in rows if r["group"] == "p#")
    assert products["signals"] >= 8 and products["ff"] == 16 * products["signals"]
    assert sum(r["lut4"] for r in rows) == u["lut4"] and sum(r["ff"] for r in rows) == u["ff"]


def test_a_build_directory_in_use_is_a_clear_error(tmp_path):
    """Regression: two runs of the same design raced in one build directory; one deleted the other's
    reports and died with a traceback. Now the second one says so and writes nothing."""

    def run():
        return synth_design("mults", _Multipliers(9), "ice40-up5k", params={}, build_root=tmp_path)

    with pytest.raises(DoesNotFit) as e:
        run()
    out = Path(e.value.usage["dir"])
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        stamp = (out / "top.json").stat().st_mtime_ns
        with pytest.raises(NeurohdlError, match="is in use by another synthesis of the same design: wait"):
            run()
        assert (out / "top.json").stat().st_mtime_ns == stamp
    with pytest.raises(DoesNotFit):  # released
        run()


def test_synth_breakdown_from_the_cli(cli):
    """``--breakdown N``: the N largest register groups and the rest in one row, adding up to the totals."""
    code, out, _ = cli(
        "synth", "sfq", "--preset", "tiny", "--target", "ice40-up5k", "--breakdown", "3", "--json"
    )
    r = json.loads(out)
    rows = r["breakdown"]
    assert code == 0 and len(rows) == 4 and rows[-1]["group"].endswith("more groups)")
    assert sum(x["lut4"] for x in rows) == r["lut4"] and sum(x["ff"] for x in rows) == r["ff"]
    code, _, err = cli("synth", "sfq", "--preset", "tiny", "--target", "ice40-up5k", "--breakdown", "0")
    assert code == 2 and "--breakdown 0: give a number of groups >= 1" in err


def test_a_design_that_packs_into_too_many_logic_cells_is_named(tmp_path):
    """The UP5K 2 x 2 fusemax has 5,062 LUT4s but 3,033 flip-flops that do not all pack with them:
    nextpnr needs 6,673 logic cells, and the error says so rather than 'no BELs remaining'."""
    log = tmp_path / "nextpnr.log"
    log.write_text(
        "Info: Device utilisation:\n"
        "Info: \t         ICESTORM_LC:    6673/   5280   126%\n"
        "Info: \t        ICESTORM_RAM:      17/     30    56%\n"
        "Info: \t               SB_IO:       4/     96     4%\n"
        "ERROR: Unable to place cell 'x_LC', no BELs remaining to implement cell type 'ICESTORM_LC'\n"
    )
    assert packed_shortfall(log) == "it needs 6673 ICESTORM_LC cells, the device has 5280"
    log.write_text("Info: Device utilisation:\nInfo: \t         ICESTORM_LC:    5280/   5280   100%\n")
    assert packed_shortfall(log) is None


@pytest.mark.parametrize("target, dsps", [("ice40-hx8k", 0), ("ice40-up5k", 1)])
def test_multipliers_go_to_dsps_only_where_the_device_has_them(build_root, target, dsps):
    """regression: the HX8K, which has no SB_MAC16, was given one per multiplier and never fit"""
    from neurohdl.hdl.mac_array import MacArrayBench

    r = synth_design("mac_1x1", MacArrayBench(1, 1), target, params={}, build_root=build_root / "synth")
    assert r["dsp"] == dsps and r["fmax_mhz"] > 20
    assert r["lut4"] > (60 if dsps == 0 else 0), "an 8 x 8 multiplier in LUTs takes some"

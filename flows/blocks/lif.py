"""Registry entry of the ``lif`` block: schema, network sources, stimulus and expected outputs."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ...models import lif as model
from ..config import Param
from ..errors import ConfigError
from ..registry import Block, register

SHAPE_KEYS = ("N", "N_EXT", "LOOPBACK", "W_BITS", "N_PROF")
BUILD_KEYS = (
    "N",
    "N_EXT",
    "LOOPBACK",
    "P",
    "Q",
    "W_BITS",
    "ACC_BITS",
    "CUBA",
    "DECAY",
    "REF_BITS",
    "N_PROF",
    "WDEPTH",
    "TRACE",
    "PERF",
    "CFG",
    "WMEM_IMPL",
    "IN_DEPTH",
    "OUT_DEPTH",
)


class LifBlock(Block):
    name = "lif"
    summary = "Time-multiplexed LIF/CUBA spiking core, Lava-exact, AER event streams"
    testbench = "neurohdl.cosim.tb_lif"
    vectors_meaning = "timesteps (TICKs) of random traffic"
    params = (
        Param("N", int, 256, "Neurons", 1, 4096),
        Param("N_EXT", int, 256, "External axons", 0, 4096),
        Param("LOOPBACK", bool, True, "Append the N neurons' own axons (multi-layer and recurrent networks)"),
        Param("P", int, 8, "Integrate lanes = weights per weight word", choices=(1, 2, 4, 8, 16, 32)),
        Param("Q", int, 0, "Update lanes (power of 2, <= P); 0 means Q = P", choices=(0, 1, 2, 4, 8, 16, 32)),
        Param("W_BITS", int, 8, "Signed weight width", 2, 8),
        Param("ACC_BITS", int, 16, "Wrapping accumulator width (W_BITS+1..24)", 3, 24),
        Param("CUBA", bool, True, "Store the synaptic current u (False: u = a << 6, needs du = 4095)"),
        Param("DECAY", str, "mul", "Decay datapath: multipliers or exact shifts", choices=("mul", "shift")),
        Param("REF_BITS", int, 0, "Refractory counter width", 0, 4),
        Param("N_PROF", int, 4, "Parameter profiles", 1, 16),
        Param("WDEPTH", int, 0, "Weight-memory words; 0 sizes it to the packed network", 0, 1 << 20),
        Param("TRACE", bool, False, "Trace port with post-update state (cosim always enables it)"),
        Param(
            "PERF", bool, False, "perf port: 32-bit cycle, word, stall and tick counters (cosim enables it)"
        ),
        Param("CFG", bool, False, "cfg stream port: write AXT, WMEM, NCFG words and profiles while idle"),
        Param(
            "WMEM_IMPL",
            str,
            "ebr",
            "Weight memory: block RAM, or one iCE40 SPRAM (needs CFG, P*W_BITS=16)",
            choices=("ebr", "spram"),
        ),
        Param("IN_DEPTH", int, 16, "ev_in FIFO depth", 2, 512),
        Param("OUT_DEPTH", int, 16, "ev_out FIFO depth", 2, 512),
        Param(
            "network",
            str,
            "random",
            "Network: 'random', 'digits' (the shipped 64-64-10 demo) or a .npz saved by LifNetwork.save; "
            "a file fixes N, N_EXT, LOOPBACK, W_BITS and N_PROF",
        ),
        Param("density", float, 0.5, "Weight density of a random network", 0.0, 1.0),
        Param("net_seed", int, 1, "Seed of a random network", 0, 2**32 - 1),
        Param("extreme", bool, False, "Random network near the wrap/clamp edges"),
        Param(
            "span",
            int,
            0,
            "Random network: targets of an axon lie within this many neurons (0: all)",
            0,
            4096,
        ),
    )
    stimulus_keys = {
        "events": (2, (2,), "int (k, 2) rows [kind, addr]: kind 0 SPIKE, 1 TICK, 2 CLEAR, 3 NOP"),
    }
    dump_keys = {
        "out": "int (k, 2) ev_out beats [kind, addr]: kind 0 SPIKE, 1 TICK",
        "u": "int (ticks, N) post-update u per TICK",
        "v": "int (ticks, N) post-update v per TICK",
        "ref": "int (ticks, N) refractory counters per TICK",
        "s": "int (ticks, N) spike bits per TICK",
    }

    def check(self, params: dict) -> None:
        self._params(params)

    def random_params(self, rng: np.random.Generator) -> dict:
        # TRACE and PERF are not drawn: a simulation build always has both (the testbench reads
        # them); WDEPTH stays 0, as a fixed depth can be too small for a random network.
        P = int(rng.choice([1, 2, 4, 8, 16, 32], p=[0.18] * 5 + [0.1]))
        spram = P in (2, 4, 8) and rng.random() < 0.15  # one 16-bit SPRAM word per weight row
        w_bits = 16 // P if spram else int(rng.integers(2, 9))
        params = {
            "N": max(1, P - 1) if rng.random() < 0.1 else int(rng.integers(1, 3 * P + 20)),
            "N_EXT": 0 if rng.random() < 0.1 else int(rng.integers(0, 40)),
            "LOOPBACK": bool(rng.random() < 0.8),
            "P": P,
            "Q": int(rng.choice([0] + [q for q in (1, 2, 4, 8, 16, 32) if q <= P])),  # 0: Q = P
            "W_BITS": w_bits,
            "ACC_BITS": int(rng.integers(w_bits + 1, 25)),
            "CUBA": bool(rng.random() < 0.7),
            "DECAY": str(rng.choice(["mul", "shift"])),
            "REF_BITS": int(rng.integers(0, 5)),
            "N_PROF": int(rng.integers(1, 6)),
            "CFG": spram or bool(rng.random() < 0.2),
            "WMEM_IMPL": "spram" if spram else "ebr",
            "IN_DEPTH": int(rng.choice([2, 4, 16])),
            "OUT_DEPTH": int(rng.choice([2, 4, 16])),
            "density": float(rng.choice([0.05, 0.3, 0.8])),
            "extreme": bool(rng.random() < 0.33),
            "net_seed": int(rng.integers(0, 1 << 16)),
        }
        if params["N_EXT"] == 0:  # the core's only axons are its own neurons
            params["LOOPBACK"] = True
        return params

    def _params(self, params: dict) -> model.LifParams:
        return model.LifParams(**{k: params[k] for k in BUILD_KEYS})

    def model(self, params: dict) -> model.LifNetwork:
        src = params["network"]
        if src == "random":
            return model.random_network(
                self._params(params), params["net_seed"], params["density"], params["extreme"], params["span"]
            )
        path = digits_network_path() if src == "digits" else Path(src)
        if not path.is_file():
            raise ConfigError(
                f"params.network: no such network file {src!r} (use 'random', 'digits' or a .npz)"
            )
        overrides = {k: params[k] for k in BUILD_KEYS if k not in SHAPE_KEYS}
        try:
            return model.LifNetwork.load(path, **overrides)
        except (KeyError, ValueError, OSError) as e:
            raise ConfigError(f"params.network: {src}: not a usable lif network ({e})") from None

    def rtl(self, net: model.LifNetwork, *, sim: bool):
        from ...hdl.lif import LifCore

        if sim and not (net.params.TRACE and net.params.PERF):
            net = net.with_params(TRACE=True, PERF=True)
        # In simulation a CFG build starts empty, so the testbench must load it through cfg.
        return LifCore(net, preload=not sim)

    def memory_styles(self, net: model.LifNetwork, family: str) -> dict[str, str]:
        if family == "ice40":
            return {"wmem": "huge"} if net.params.WMEM_IMPL == "spram" else {}
        # The writable per-neuron configuration is shallow and narrow: LUT RAM, not a DP16KD.
        # (Read-only, it is a ROM that Yosys places itself.)
        return {"ncfg": "distributed"} if net.params.CFG else {}

    def setup_beats(self, core) -> dict[str, list[dict]]:
        if not core.params.CFG:
            return {}
        img = core.images
        beats = [
            {"sel": sel, "addr": addr, "data": int(word)}
            for sel, key in enumerate(("axt", "wmem", "ncfg", "prof"))
            for addr, word in enumerate(img[key])
        ]
        return {"cfg": beats}

    def stimulus(self, net: model.LifNetwork, rng: np.random.Generator, vectors: int) -> dict:
        return {"events": random_traffic(net.params, rng, vectors)}

    def expected(self, net: model.LifNetwork, stim: dict) -> dict:
        r = model.LifModel(net).run(stim["events"])
        counts = {"words": np.array(r.words), "ticks": np.array(r.ticks)}
        return {"out": r.out, "u": r.u, "v": r.v, "ref": r.ref, "s": r.s, **counts}

    def cycle_model(self, net: model.LifNetwork, stim: dict) -> int:
        return model.cycles(model.LifModel(net).run(stim["events"]), net.params)

    anchors = (
        ("SOP/cycle, ODIN / tinyODIN", "0.5 (spec §4); targets >= 6.0 at P=8, >= 0.85 at P=1"),
        ("tinyODIN full on ECP5-25F, pinned flow", "2,960 LUT4, 1,810 FF, 17 DP16KD, 38.4-39.9 MHz (spec)"),
        ("Fmax goals", ">= 100 MHz ECP5-25F, >= 50 MHz UP5K (spec)"),
    )

    def cycle_limit(self, net: model.LifNetwork, stim: dict) -> tuple[float, str]:
        r, p = model.LifModel(net).run(stim["events"]), net.params
        return r.effective_acs / p.P + r.ticks * p.G * p.P / p.Q, "Effective_ACs/P + T*G*P/Q"

    def check_stimulus(self, stim: dict, net: model.LifNetwork, source: str) -> None:
        super().check_stimulus(stim, net, source)
        ev = stim["events"]
        if ev.size and (ev[:, 0].min() < 0 or ev[:, 0].max() > 3):
            raise ConfigError(f"{source}: events[:, 0] (kind) must be 0..3")
        limit = 1 << model.ceil_log2(max(2, net.params.N_AX))
        if ev.size and (ev[:, 1].min() < 0 or ev[:, 1].max() >= limit):
            raise ConfigError(f"{source}: events[:, 1] (addr) must fit the {limit}-entry ev_in address field")

    def app(self, *, out_dir, sim: str, steps: list[int], limit: int | None, progress) -> dict:
        """The digits application (spec §5): accuracy at each T, RTL against the model image by image."""
        from .. import lif_digits

        result = lif_digits.run(steps=steps, sim=sim, limit=limit, out_dir=out_dir, progress=progress)
        result["markdown"] = lif_digits.table(result)
        result["passed"] = all(r["passed"] for r in result["rows"])
        return result


def digits_network_path() -> Path:
    return Path(str(resources.files("neurohdl.models").joinpath("data", "lif_digits.npz")))


def random_traffic(p: model.LifParams, rng: np.random.Generator, steps: int) -> np.ndarray:
    """Random commands: per step a spike rate from idle to saturated, duplicates, dropped addresses,
    NOPs, and now and then a CLEAR or a run of empty TICKs."""
    addr_space = 1 << model.ceil_log2(max(2, p.N_AX))
    ev: list[tuple[int, int]] = []
    for _ in range(steps):
        rate = rng.choice([0.0, 0.02, 0.1, 0.3, 1.0], p=[0.15, 0.3, 0.3, 0.2, 0.05])
        spikes = np.flatnonzero(rng.random(p.N_AX) < rate).tolist()
        spikes += rng.choice(max(1, p.N_AX), size=int(rng.integers(0, 3))).tolist()  # duplicates
        if addr_space > p.N_AX and rng.random() < 0.3:
            spikes.append(int(rng.integers(p.N_AX, addr_space)))  # dropped by the core
        step = [(model.SPIKE, int(a)) for a in spikes]
        step += [(model.NOP, int(rng.integers(0, addr_space)))] * int(rng.random() < 0.2)
        order = rng.permutation(len(step))
        ev += [step[i] for i in order]
        if rng.random() < 0.04:
            ev.append((model.CLEAR, 0))
        ev.append((model.TICK, 0))
    return np.asarray(ev, dtype=np.int64).reshape(-1, 2)


register(LifBlock())

"""Random legal SFQ netlists for differential tests (spec ``sfq.md`` §5): every element type, random
latencies, parameters as constants or registers."""

from __future__ import annotations

import numpy as np

PORTS = {
    "delay": ["in"], "split": ["in"], "merge": None, "dro": ["d", "clk"], "ndro": ["set", "rst", "clk"],
    "tff": ["in"], "c_last": ["a", "b"], "c_first": ["a", "b"], "inhibit": ["a", "clk"], "divider": ["in"],
    "synapse": ["in"], "neuron": None,
}  # fmt: skip


def random_netlist(rng: np.random.Generator, n_elements: int = 12, n_inputs: int = 3) -> dict:
    """A netlist document: wires are consumed from a pool of driven, unloaded wires; inputs are
    added when the pool runs short; what is left over becomes the outputs."""
    pool = [f"x{k}" for k in range(n_inputs)]
    inputs = list(pool)
    regs = {
        "pr": {"width": 16, "init": int(rng.integers(0, 65536))},
        "th": {"width": 3, "init": int(rng.integers(0, 8))},
    }
    elements = []
    wire = 0

    def take(k: int) -> list[str]:
        nonlocal inputs
        while len(pool) < k:
            name = f"x{len(inputs)}"
            inputs.append(name)
            pool.append(name)
        picks = [pool.pop(int(rng.integers(0, len(pool)))) for _ in range(k)]
        return picks

    for j in range(n_elements):
        etype = str(rng.choice(list(PORTS)))
        el: dict = {"id": f"e{j}", "type": etype, "lat": int(rng.choice([1, 1, 1, 2, 3]))}
        if etype == "merge":
            el["in"] = take(int(rng.integers(2, 4)))
            el["mode"] = str(rng.choice(["lossy", "queue"]))
            el["dead"] = int(rng.integers(0, 3))
            el["depth"] = int(rng.integers(1, 3))
        elif etype == "neuron":
            el["exc"] = take(int(rng.integers(1, 3)))
            el["inh"] = take(int(rng.integers(0, 2)))
            el["width"] = 3
            el["theta"] = "$th" if rng.random() < 0.3 else int(rng.integers(0, 8))
            el["leak"] = int(rng.choice([0, 1, 2, 5]))
            el["refractory"] = int(rng.choice([0, 0, 2]))
            el["reset"] = str(rng.choice(["subtract", "zero"]))
            el["fanin"] = str(rng.choice(["merge", "count"]))
        else:
            for port, w in zip(PORTS[etype], take(len(PORTS[etype])), strict=True):
                el[port] = w
        if etype == "synapse":
            el["p"] = "$pr" if rng.random() < 0.5 else int(rng.integers(0, 65536))
            el["steps"] = int(rng.choice([1, 16]))
        if etype == "divider":
            el["k"] = int(rng.integers(1, 5))
        if etype == "tff":
            el["init"] = int(rng.integers(0, 2))
        if etype == "dro":
            el["order"] = str(rng.choice(["clock_first", "data_first"]))
        n_out = int(rng.integers(2, 4)) if etype == "split" else 1
        outs = [f"w{wire + k}" for k in range(n_out)]
        wire += n_out
        el["out"] = outs if etype == "split" else outs[0]
        pool.extend(outs)
        elements.append(el)
    return {"name": "random", "inputs": inputs, "outputs": list(pool), "regs": regs, "elements": elements}

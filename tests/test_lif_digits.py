"""The digits application's model side: encoding, readout rules, the committed network."""

import numpy as np
import pytest
from neurohdl.flows.blocks.lif import digits_network_path
from neurohdl.models import lif as m
from neurohdl.models import lif_digits as d


def test_sigma_delta_encoding_rate_and_order():
    img = np.zeros(64, dtype=np.int64)
    img[3], img[10], img[63] = 16, 8, 1
    ev = d.encode(img[None], 32)
    assert ev[0].tolist() == [m.CLEAR, 0] and int((ev[:, 0] == m.TICK).sum()) == 32
    spikes = ev[ev[:, 0] == m.SPIKE, 1]
    assert (spikes == 3).sum() == 32 and (spikes == 10).sum() == 16 and (spikes == 63).sum() == 2
    # ascending pixel order within each step
    step = []
    for kind, addr in ev[1:]:
        if kind == m.TICK:
            assert step == sorted(step)
            step = []
        else:
            step.append(int(addr))


def test_readout_ties_go_to_the_earliest_first_spike_then_the_lowest_index():
    o = d.N_HID
    out = np.array([[0, o + 5], [1, 0], [0, o + 2], [1, 0], [0, o + 2], [0, o + 5], [1, 0]])
    assert d.readout(out) == 5  # both have two spikes; 5 fired first
    out = np.array([[0, o + 7], [0, o + 4], [1, 0]])
    assert d.readout(out) == 4  # same count, same step: lowest index
    assert d.readout(np.array([[1, 0]])) == 0  # silence: lowest index


def test_committed_network_accuracy_at_t16():
    """The shipped network reaches the spec's 97 % on the 450 test images (golden model)."""
    _, x_test, _, y_test = d.load_split()
    net = m.LifNetwork.load(digits_network_path())
    r = m.LifModel(net).run(d.encode(x_test, 16))
    outs = d.split_outputs(r.out, 16)
    assert len(outs) == 450
    acc = np.mean([d.readout(o) for o in outs] == y_test)
    assert acc >= 0.97, acc


@pytest.mark.slow
def test_regeneration_reproduces_the_committed_network(tmp_path):
    """Training and conversion are deterministic: the committed .npz is what the code makes."""
    d.regenerate(tmp_path)
    a = m.LifNetwork.load(tmp_path / "lif_digits.npz")
    b = m.LifNetwork.load(digits_network_path())
    assert a.params == b.params
    for name in m.NETWORK_FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name

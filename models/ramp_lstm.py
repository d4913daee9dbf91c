"""The ``ramp_adc`` application (spec ``ramp_adc.md`` §5): an LSTM on scikit-learn digits whose gate
activations come from the ramp ADC.

Each 8x8 image is read row by row (8 steps of 8 features). One fused weight matrix W (4H x (8+H+1))
acts on [x_t; h_{t-1}; 1], so every gate unit is one crossbar column; gate order i, f, g, o. Training
is numpy BPTT with float activations; inference swaps the activations for the ramp ADC's codes
(sigmoid on [-8, 8) for i, f, o; tanh on [-4, 4) for g and tanh(c)), for a perturbed ramp from the
what-if model, or keeps float. c and h stay float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .ramp_adc import FunctionSpec, Table, build_table, code_range, levels, real_to_code
from .ramp_whatif import Variation, instance

H = 32
STEPS, FEATURES, CLASSES = 8, 8, 10
N_TEST = 450
Act = Callable[[np.ndarray], np.ndarray]


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test); x has shape (n, 8 steps, 8 features) in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).reshape(-1, STEPS, FEATURES)
    perm = np.random.default_rng(0).permutation(len(x))
    test, train = perm[:N_TEST], perm[N_TEST:]
    return x[train], d.target[train], x[test], d.target[test]


@dataclass
class Lstm:
    W: np.ndarray  # (4H, 8 + H + 1)
    V: np.ndarray  # (10, H + 1)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def forward(net: Lstm, x: np.ndarray, sig: Act = sigmoid, tanh: Act = np.tanh, keep: bool = False):
    """Logits for a batch x (n, 8, 8); with ``keep`` also the per-step caches for BPTT."""
    n = len(x)
    h, c = np.zeros((n, H)), np.zeros((n, H))
    caches = []
    for t in range(STEPS):
        z = np.concatenate([x[:, t], h, np.ones((n, 1))], axis=1)
        a = z @ net.W.T
        i, f, g, o = sig(a[:, :H]), sig(a[:, H : 2 * H]), tanh(a[:, 2 * H : 3 * H]), sig(a[:, 3 * H :])
        c_prev = c
        c = f * c + i * g
        tc = tanh(c)
        h = o * tc
        if keep:
            caches.append((z, i, f, g, o, c_prev, tc))
    hz = np.concatenate([h, np.ones((n, 1))], axis=1)
    logits = hz @ net.V.T
    return (logits, caches, hz) if keep else logits


def gradients(net: Lstm, x: np.ndarray, y: np.ndarray) -> tuple[float, Lstm]:
    logits, caches, hz = forward(net, x, keep=True)
    n = len(x)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = float(-np.log(p[np.arange(n), y] + 1e-12).mean())
    dlog = p
    dlog[np.arange(n), y] -= 1.0
    dlog /= n
    dV = dlog.T @ hz
    dh = dlog @ net.V[:, :H]
    dc = np.zeros((n, H))
    dW = np.zeros_like(net.W)
    for z, i, f, g, o, c_prev, tc in reversed(caches):
        do = dh * tc
        dc = dc + dh * o * (1 - tc**2)
        da = np.concatenate(
            [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g**2), do * o * (1 - o)], axis=1
        )
        dW += da.T @ z
        dh = (da @ net.W)[:, FEATURES : FEATURES + H]
        dc = dc * f
    return loss, Lstm(dW, dV)


def train(seed: int, epochs: int = 40, batch: int = 64, lr: float = 1e-2) -> Lstm:
    """BPTT with softmax cross-entropy and Adam (1e-2, 0.9, 0.999, 1e-8), float activations."""
    x, y, _, _ = load_split()
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(H)
    W = rng.uniform(-bound, bound, (4 * H, FEATURES + H + 1))
    W[H : 2 * H, -1] = 1.0  # forget-gate bias
    V = rng.uniform(-bound, bound, (CLASSES, H + 1))
    net = Lstm(W, V)
    moments = {k: [np.zeros_like(getattr(net, k)), np.zeros_like(getattr(net, k))] for k in ("W", "V")}
    shuffle = np.random.default_rng(seed + 1)
    step = 0
    b1, b2, eps = 0.9, 0.999, 1e-8
    for _ in range(epochs):
        order = shuffle.permutation(len(x))
        for a in range(0, len(x), batch):
            idx = order[a : a + batch]
            _, grad = gradients(net, x[idx], y[idx])
            step += 1
            for k, (m, v) in moments.items():
                gk = getattr(grad, k)
                m *= b1
                m += (1 - b1) * gk
                v *= b2
                v += (1 - b2) * gk**2
                upd = lr * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + eps)
                setattr(net, k, getattr(net, k) - upd)
    return net


# -- activations through the ramp ADC ----------------------------------------------------------


def gate_tables(B_in: int, N: int) -> tuple[Table, Table]:
    return build_table(FunctionSpec("sigmoid"), B_in, N), build_table(FunctionSpec("tanh"), B_in, N)


def act_from_codes(table: Table, codes: np.ndarray) -> Act:
    """x -> L(y(s(x))) for a code table over every input code (ideal or perturbed)."""
    s_min = code_range(table.B_in)[0]
    vals = levels(table.spec(), table.N, codes)

    def act(a: np.ndarray) -> np.ndarray:
        return vals[real_to_code(a, table.in_range, table.B_in) - s_min]

    return act


def ramp_acts(B_in: int, N: int) -> tuple[Act, Act]:
    sig, tnh = gate_tables(B_in, N)
    return act_from_codes(sig, sig.codes()), act_from_codes(tnh, tnh.codes())


def noisy_acts(B_in: int, N: int, var: Variation, k: int, seed: int = 0) -> tuple[Act, Act]:
    """Instance k of a variation: group 0 (sigmoid) and group 1 (tanh) ramps perturbed."""
    sig, tnh = gate_tables(B_in, N)
    ys = instance(sig, var, seed=seed, k=k, group=0).y[:, 0]
    yt = instance(tnh, var, seed=seed, k=k, group=1).y[:, 0]
    return act_from_codes(sig, ys), act_from_codes(tnh, yt)


def accuracy(net: Lstm, x: np.ndarray, y: np.ndarray, acts: tuple[Act, Act] | None = None) -> float:
    logits = forward(net, x, *(acts or (sigmoid, np.tanh)))
    return float((logits.argmax(1) == y).mean())


# -- the recurrence as conversions of one bank (the RTL subset) ----------------------------------


def conversions(net: Lstm, x: np.ndarray, convert: Callable[[np.ndarray], np.ndarray], B_in: int, N: int):
    """Run the recurrence with a converter of rows of 4H codes (sigmoid group on i, f, o columns,
    tanh on g): per step pass A converts the gate pre-activations, pass B the tanh(c) codes on the g
    columns. Returns the input rows, the output rows (2 per step per sample) and the predictions."""
    sig, tnh = gate_tables(B_in, N)
    n = len(x)
    h, c = np.zeros((n, H)), np.zeros((n, H))
    rows_in, rows_out = [], []
    g_cols = slice(2 * H, 3 * H)
    for t in range(STEPS):
        z = np.concatenate([x[:, t], h, np.ones((n, 1))], axis=1)
        a = z @ net.W.T
        s = np.concatenate(
            [
                real_to_code(a[:, : 2 * H], sig.in_range, B_in),
                real_to_code(a[:, g_cols], tnh.in_range, B_in),
                real_to_code(a[:, 3 * H :], sig.in_range, B_in),
            ],
            axis=1,
        )
        y = convert(s)
        i = levels(sig.spec(), N, y[:, :H])
        f = levels(sig.spec(), N, y[:, H : 2 * H])
        g = levels(tnh.spec(), N, y[:, g_cols])
        o = levels(sig.spec(), N, y[:, 3 * H :])
        c = f * c + i * g
        sb = np.zeros_like(s)
        sb[:, g_cols] = real_to_code(c, tnh.in_range, B_in)
        yb = convert(sb)
        h = o * levels(tnh.spec(), N, yb[:, g_cols])
        rows_in += [s, sb]
        rows_out += [y, yb]
    hz = np.concatenate([h, np.ones((n, 1))], axis=1)
    pred = (hz @ net.V.T).argmax(1)
    # rows ordered sample by sample: conversion (sample, step, pass)
    order = lambda rows: np.stack(rows, 1).reshape(-1, 4 * H)  # noqa: E731
    return order(rows_in), order(rows_out), pred

"""The fusemax application (spec fusemax.md §5): one cross-attention head as a soft nearest-neighbour
classifier over scikit-learn's bundled digits. Keys are memorised images, values their one-hot labels,
queries the held-out images; the prediction is the argmax of the attention output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fusemax as fm

ALPHA = 20.0
N_MEMORY = 1437
LENGTHS = (64, 256, 1000, 1437)


@dataclass(frozen=True)
class DigitsTask:
    """Embedded, quantised digits: ``Q`` (360, 64), ``K`` (1437, 64), ``V`` (1437, 10) int8 codes with
    their steps, the float embeddings and the labels."""

    Q: np.ndarray
    K: np.ndarray
    V: np.ndarray
    sq: float
    sk: float
    sv: float
    q_float: np.ndarray
    k_float: np.ndarray
    y_query: np.ndarray
    y_memory: np.ndarray

    def scale(self, FB: int = 8) -> tuple[int, int]:
        return fm.choose_scale(self.sq, self.sk, ALPHA, FB)


def load_task() -> DigitsTask:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    mem, qry = order[:N_MEMORY], order[N_MEMORY:]
    mean = x[mem].mean(axis=0)
    emb = x - mean
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    Q, sq = fm.quantize(emb[qry])
    K, sk = fm.quantize(emb[mem])
    V = 127 * np.eye(10, dtype=np.int64)[y[mem]]
    return DigitsTask(Q, K, V, sq, sk, 1 / 127, emb[qry], emb[mem], y[qry], y[mem])


def predict(av: np.ndarray) -> np.ndarray:
    """Argmax over classes, the first on ties."""
    return np.argmax(av, axis=1)


def evaluate(task: DigitsTask, M: int, *, R: int = 8, OB: int = 8, **kw) -> dict:
    """Golden-model and float accuracies over the first ``M`` keys, agreement and errors."""
    Cs, SH = task.scale()
    K, V = task.K[:M], task.V[:M]
    av = fm.attention_int(task.Q, K, V, Cs=Cs, SH=SH, R=R, OB=OB, **kw)
    ref = fm.attention_float(task.Q * task.sq, K * task.sk, V * task.sv, ALPHA) / task.sv
    ideal = fm.attention_float(task.q_float, task.k_float[:M], V * task.sv, ALPHA) / task.sv
    e = av / (1 << OB) - ref
    pred, pred_f = predict(av), predict(ref)
    return {
        "M": M,
        "Cs": Cs,
        "SH": SH,
        "accuracy": float((pred == task.y_query).mean()),
        "accuracy_float_int8": float((pred_f == task.y_query).mean()),
        "accuracy_float": float((predict(ideal) == task.y_query).mean()),
        "argmax_agreement": float((pred == pred_f).mean()),
        "max_err_lsb": float(np.abs(e).max()),
        "rms_err_lsb": float(np.sqrt(np.mean(e**2))),
        "av": av,
    }

"""Limb candidates scored by the part affinity fields, as TAO's bpnet post-processor does.

NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/inferencer/
postprocessor.py` (`get_bipartite_graph`, `compute_line_integral`,
`assignment`, `find_connections`). For every edge of the skeleton and every
(start candidate, end candidate) pair: sample 10 points from start to end
(rounded to pixels), take the dot product of the PAF vector there with the
limb's unit vector, keep samples scoring above `paf_threshold` (0.05); the
pair's score is the mean of the kept samples, and the pair qualifies when the
score is positive and more than 80% of the samples were kept. Pairs are then
taken greedily, best score first, each candidate used at most once per edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bodypose_exporter.evaluation.peaks import Peak

PAF_THRESHOLD = 0.05
SAMPLES = 10
COUNT_THRESHOLD = 0.8


@dataclass(frozen=True)
class Connection:
    start: int  # peak id
    end: int  # peak id
    score: float


def pair_scores(
    starts: list[Peak], ends: list[Peak], paf_xy: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """(len(ends), len(starts)) line-integral scores and counts of samples above the threshold."""
    a = np.array([(p.x, p.y) for p in starts], dtype=np.float64)  # (nA, 2)
    b = np.array([(p.x, p.y) for p in ends], dtype=np.float64)  # (nB, 2)
    vectors = b[:, None, :] - a[None, :, :]  # (nB, nA, 2)
    steps = np.arange(SAMPLES, dtype=np.float64)[None, None, :, None] / (SAMPLES - 1)
    points = np.rint(a[None, :, None, :] + steps * vectors[:, :, None, :]).astype(np.int64)
    h, w = paf_xy.shape[:2]
    xs = np.clip(points[..., 0], 0, w - 1)
    ys = np.clip(points[..., 1], 0, h - 1)
    field = paf_xy[ys, xs].astype(np.float64)  # (nB, nA, SAMPLES, 2)
    unit = vectors / (np.linalg.norm(vectors, axis=-1, keepdims=True) + 1e-6)
    scores = (field * unit[:, :, None, :]).sum(axis=-1)  # (nB, nA, SAMPLES)
    kept = scores > PAF_THRESHOLD
    counts = kept.sum(axis=-1)
    return (scores * kept).sum(axis=-1) / (counts + 1e-6), counts


def connect(
    starts: list[Peak], ends: list[Peak], paf_xy: npt.NDArray[np.float32]
) -> list[Connection]:
    """The edge's connections: qualifying pairs taken greedily by score."""
    if not starts or not ends:
        return []
    scores, counts = pair_scores(starts, ends, paf_xy)
    qualified = (scores > 0) & (counts > COUNT_THRESHOLD * SAMPLES)
    end_idx, start_idx = np.nonzero(qualified)
    order = np.argsort(-scores[end_idx, start_idx], kind="stable")
    used_start: set[int] = set()
    used_end: set[int] = set()
    chosen = []
    for i in order:
        s, e = int(start_idx[i]), int(end_idx[i])
        if s in used_start or e in used_end:
            continue
        used_start.add(s)
        used_end.add(e)
        chosen.append(Connection(starts[s].id, ends[e].id, float(scores[e, s])))
    return chosen

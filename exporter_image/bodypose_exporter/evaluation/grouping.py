"""Connections into people, as TAO's bpnet post-processor groups them.

NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/inferencer/
postprocessor.py` (`connect_parts`, `get_final_keypoints`). Edges are taken in
skeleton order; a connection whose start or end candidate already belongs to
one person extends that person; when it touches two people whose joints do
not overlap they are merged, otherwise the first is extended; a connection
touching nobody starts a new person, except on the last two edges (eye-ear),
as in TAO. A person's score is the sum of its candidates' heatmap scores and
its connections' scores; people with fewer than 4 joints, or a mean score per
joint under 0.4, are dropped. The reported confidence is 1 - 1/score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bodypose_exporter.evaluation.connections import Connection
from bodypose_exporter.evaluation.peaks import Peak

MIN_PARTS = 4
MIN_MEAN_SCORE = 0.4


@dataclass(frozen=True)
class Person:
    joints: tuple[tuple[float, float] | None, ...]  # (x, y) per BpNet joint, None when missing
    score: float  # 1 - 1 / (sum of candidate and connection scores), TAO's confidence


def group(
    connections: list[list[Connection]],
    peaks: list[list[Peak]],
    topology: npt.NDArray[np.int64],
) -> list[Person]:
    joints = len(peaks)
    by_id = {p.id: p for joint_peaks in peaks for p in joint_peaks}
    rows: list[npt.NDArray[np.float64]] = []  # joints peak ids (-1), then score, then count
    last_new = len(topology) - 2
    for edge, edge_connections in enumerate(connections):
        a, b = int(topology[edge][2]), int(topology[edge][3])
        for conn in edge_connections:
            sharing = [
                i for i, row in enumerate(rows) if row[a] == conn.start or row[b] == conn.end
            ]
            if len(sharing) == 1:
                row = rows[sharing[0]]
                if row[b] != conn.end:
                    row[b] = conn.end
                    row[-1] += 1
                    row[-2] += by_id[conn.end].score + conn.score
            elif len(sharing) == 2:
                first, second = rows[sharing[0]], rows[sharing[1]]
                overlap = ((first[:joints] >= 0) & (second[:joints] >= 0)).any()
                if not overlap:
                    first[:joints] += second[:joints] + 1
                    first[-2:] += second[-2:]
                    first[-2] += conn.score
                    del rows[sharing[1]]
                else:
                    first[b] = conn.end
                    first[-1] += 1
                    first[-2] += by_id[conn.end].score + conn.score
            elif not sharing and edge < last_new:
                row = -np.ones(joints + 2)
                row[a], row[b] = conn.start, conn.end
                row[-1] = 2
                row[-2] = by_id[conn.start].score + by_id[conn.end].score + conn.score
                rows.append(row)
    people = []
    for row in rows:
        if row[-1] < MIN_PARTS or row[-2] / row[-1] < MIN_MEAN_SCORE:
            continue
        coords = tuple(
            (float(by_id[int(i)].x), float(by_id[int(i)].y)) if i >= 0 else None
            for i in row[:joints]
        )
        people.append(Person(coords, 1.0 - 1.0 / float(row[-2])))
    return people

"""`bodypose-report`: TAO's resolution table, measured for your model, data and pools.

TAO's BodyPoseNet guide chooses the network's input resolution from one
static table (runtime per resolution and precision on a GeForce RTX 2080 and
a Jetson AGX) and the advice that AP for medium-size people rises from
224x320 to 288x384 to 320x448 while large people stay about the same. This
reads a set of BodyPoseExport resources (one per resolution and precision,
e.g. made from `examples/resolution-sweep/`) through the Kubernetes API
and prints the same table for your own pools: resolution, precision, target,
latency at batch 1 and at maxBatchSize, throughput, AP, APm, APl and the drop
against FP32, as each target's build measured them (a figure nobody measured
prints as "not measured"); as Markdown or CSV, and one plot: AP and APm
against batch-1 latency, a line per target and precision, a point per
resolution, one panel per clock (CUDA events time the GPU's work alone, the
wall clock the runtime's whole call: the two are never drawn on one axis).

    bodypose-report -l bodypose.dev/sweep=bpnet -n models
    bodypose-report -l bodypose.dev/sweep=bpnet -n models --format csv > sweep.csv
    bodypose-report -l bodypose.dev/sweep=bpnet -n models --plot sweep   # sweep.png, sweep.svg

It only reads (get/list on bodyposeexports); the figures come from the
resources' status (targets[].latencyMs, throughput, ap, apM, apL, apDrop).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOT_MEASURED = "not measured"
#: A target's precision before its artifact is built (its status says none yet).
NOT_BUILT = "not built"
PRECISION_ORDER = {"fp32": 0, "fp16": 1, "int8": 2}
COLUMNS = (
    "resolution", "precision", "target", "batch-1 ms (median)", "batch-1 ms (p90)",
    "batch-max ms (median)", "batch max", "images/s", "AP", "APm", "APl", "AP drop",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    resource: str
    height: int
    width: int
    precision: str
    target: str
    batch1_median: float | None
    batch1_p90: float | None
    batch_max_median: float | None
    batch_max: int | None
    throughput: float | None
    ap: float | None
    ap_m: float | None
    ap_l: float | None
    ap_drop: float | None
    #: How the latency was measured (`targets[].latency.clock`): cuda-events, wall or None.
    clock: str | None = None

    @property
    def resolution(self) -> str:
        return f"{self.height}x{self.width}"

    def cells(self) -> list[str]:
        def shown(value: float | int | None, digits: int = 2) -> str:
            return NOT_MEASURED if value is None else f"{value:.{digits}f}"

        return [
            self.resolution, self.precision, self.target, shown(self.batch1_median),
            shown(self.batch1_p90), shown(self.batch_max_median),
            "" if self.batch_max is None else str(self.batch_max), shown(self.throughput, 1),
            shown(self.ap), shown(self.ap_m), shown(self.ap_l), shown(self.ap_drop),
        ]  # fmt: skip


def _resolution(status: dict[str, Any]) -> tuple[int, int]:
    """(height, width) from the status' HEIGHTxWIDTH; (0, 0) while it has none."""
    height, _, width = str(status.get("resolution") or "").partition("x")
    return (int(height), int(width)) if height.isdigit() and width.isdigit() else (0, 0)


def rows_of(resources: Iterable[dict[str, Any]]) -> list[Row]:
    """One row per resource and target, in resolution, precision, target order.

    Resolution and precision are the status', not the spec's: the status describes what
    was built (a spec edited since may not be), and a target's precision is what its
    artifact computes in (an ONNX Runtime target of an fp16 resource runs fp32)."""
    rows = []
    for obj in resources:
        status = obj.get("status") or {}
        height, width = _resolution(status)
        for target in status.get("targets", []):
            latency = target.get("latencyMs") or {}
            one, top = latency.get("batch1") or {}, latency.get("batchMax") or {}
            rows.append(Row(
                resource=obj["metadata"]["name"], height=height, width=width,
                precision=str(target.get("precision") or NOT_BUILT),
                target=str(target["name"]), batch1_median=one.get("median"),
                batch1_p90=one.get("p90"), batch_max_median=top.get("median"),
                batch_max=top.get("batch"), throughput=target.get("throughput"),
                ap=target.get("ap"), ap_m=target.get("apM"), ap_l=target.get("apL"),
                ap_drop=target.get("apDrop"), clock=(target.get("latency") or {}).get("clock"),
            ))  # fmt: skip
    rows.sort(key=lambda r: (r.height * r.width, PRECISION_ORDER.get(r.precision, 9), r.target))
    return rows


def markdown(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(row.cells() for row in rows)
    return out.getvalue()


#: What a figure by each clock is, for the axis that shows it (`LatencyMeasurement.clock`).
CLOCKS: dict[str | None, tuple[str, str]] = {
    "cuda-events": ("CUDA events", "CUDA events around the engine's execution, no copies"),
    "wall": ("wall clock", "wall clock around the runtime's whole call, with any copies and "
             "conversions"),
    None: ("clock not recorded", "clock not recorded"),
}  # fmt: skip


def _clock(kind: str | None) -> tuple[str, str]:
    return CLOCKS.get(kind, (str(kind), str(kind)))


def plot(rows: Sequence[Row], prefix: Path, title: str = "AP against batch-1 latency") -> Any:
    """AP (solid) and APm (dashed) against batch-1 latency: a line per target and precision
    through its resolutions, smallest first, one panel per clock the latencies were
    measured by (figures by CUDA events and by the wall clock are not comparable, so they
    never share an axis, and each axis names its clock); written as <prefix>.png and
    <prefix>.svg. The figure."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or in a Job
    import matplotlib.pyplot as plt

    timed = [r for r in rows if r.batch1_median is not None and r.ap is not None]
    kinds = sorted({r.clock for r in timed}, key=lambda k: (k is None, str(k))) or [None]
    figure, panels = plt.subplots(1, len(kinds), figsize=(8 * len(kinds), 5), squeeze=False)
    for axes, kind in zip(panels[0], kinds, strict=True):
        _panel(axes, [r for r in timed if r.clock == kind])
        short, words = _clock(kind)
        axes.set_xlabel(f"batch-1 latency, median (ms), {words}; on each target's build node")
        axes.set_ylabel("OKS keypoint AP (x 100)")
        axes.set_title(title if len(kinds) == 1 else f"{title} ({short})")
        axes.grid(True, alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=8)
    if len(kinds) > 1:
        figure.suptitle("latencies by different clocks: compare within a panel, not across")
    figure.tight_layout()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".svg"):
        figure.savefig(prefix.with_suffix(suffix))
    return figure


def _panel(axes: Any, rows: Sequence[Row]) -> None:
    """One clock's lines: a line per target and precision, a point per resolution."""
    lines = sorted({(r.target, r.precision) for r in rows},
                   key=lambda tp: (tp[0], PRECISION_ORDER.get(tp[1], 9)))  # fmt: skip
    for target, precision in lines:
        mine = sorted((r for r in rows if (r.target, r.precision) == (target, precision)),
                      key=lambda r: r.height * r.width)  # fmt: skip
        xs = [float(r.batch1_median or 0.0) for r in mine]
        aps = [float(r.ap or 0.0) for r in mine]
        name = f"{target} {precision}"
        line = axes.plot(xs, aps, marker="o", label=f"{name} AP")[0]
        if all(r.ap_m is not None for r in mine):
            axes.plot(xs, [float(r.ap_m or 0.0) for r in mine], marker="s", linestyle="--",
                      color=line.get_color(), label=f"{name} APm")  # fmt: skip
        for r in mine:
            axes.annotate(r.resolution, (r.batch1_median, r.ap), textcoords="offset points",
                          xytext=(4, 4), fontsize=8)  # fmt: skip


def _resources(selector: str, namespace: str | None, kubeconfig: str | None) -> list[Any]:
    from kubernetes import client, config

    loader: Any = config
    if kubeconfig:
        loader.load_kube_config(kubeconfig)
    else:
        try:
            loader.load_incluster_config()
        except config.ConfigException:
            loader.load_kube_config()
    api: Any = client.CustomObjectsApi()
    if namespace:
        got = api.list_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", label_selector=selector
        )
    else:
        got = api.list_cluster_custom_object(
            "bodypose.dev", "v1alpha1", "bodyposeexports", label_selector=selector
        )
    items: list[Any] = got.get("items", [])
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bodypose-report",
        description="TAO's resolution table for your own BodyPoseExports: latency per target "
        "(measured on its build node), AP, APm, APl and the drop against FP32, per resolution "
        "and precision.",
        epilog=__doc__.split("\n\n")[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-l", "--selector", required=True,
                        help="label selector of the resources to compare")  # fmt: skip
    parser.add_argument("-n", "--namespace", help="their namespace (default: all namespaces)")
    parser.add_argument("--kubeconfig", help="kubeconfig (default: in-cluster, then ~/.kube)")
    parser.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    parser.add_argument("--plot", type=Path, metavar="PREFIX",
                        help="also write PREFIX.png and PREFIX.svg")  # fmt: skip
    args = parser.parse_args(argv)
    resources = _resources(args.selector, args.namespace, args.kubeconfig)
    if not resources:
        print(f"bodypose-report: no BodyPoseExport matches -l {args.selector}", file=sys.stderr)
        return 2
    rows = rows_of(resources)
    sys.stdout.write(markdown(rows) if args.format == "markdown" else csv_text(rows))
    if args.plot is not None:
        plot(rows, args.plot)
        print(f"plot: {args.plot.with_suffix('.png')}, {args.plot.with_suffix('.svg')}",
              file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

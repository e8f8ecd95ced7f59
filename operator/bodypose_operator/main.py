"""`bodypose-operator`: run the operator (kopf) with a liveness endpoint and metrics."""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections.abc import Sequence

import kopf
from prometheus_client import start_http_server

from bodypose_operator.controller import handlers  # noqa: F401  (registers the handlers)
from bodypose_operator.controller.handlers import SETTINGS


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="bodypose-operator",
        description="Reconcile BodyPoseExport resources into export and per-pool build Jobs.",
    )
    p.add_argument("--namespace", action="append", default=[], help="watch only these (repeatable)")
    p.add_argument(
        "--liveness", default="http://0.0.0.0:8080/healthz", help="liveness endpoint URL"
    )
    p.add_argument(
        "--metrics-port", type=int, default=9090, help="Prometheus metrics port (0: off)"
    )
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s [bodypose-operator] %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # A line per handler run ("Handler ... succeeded") is kopf's, not news: ours
        # say what changed. Warnings and errors still come through.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("botocore").setLevel(logging.WARNING)
    if args.metrics_port:
        start_http_server(args.metrics_port)
    peering = SETTINGS.peering_name
    settings = kopf.OperatorSettings()
    # Watching listed namespaces, the chart grants nothing cluster-wide but nodes
    # (charts/bodypose-operator/templates/rbac.yaml): kopf then serves exactly those
    # namespaces and the resources found at start-up, without listing namespaces or
    # watching CRDs (kopf's ScanningSettings.disabled, which also keeps its "not enough
    # permissions" warnings out of the log). Kueue must then be installed before the
    # operator starts for its Workloads to be watched.
    settings.scanning.disabled = bool(args.namespace)
    kopf.run(
        settings=settings,
        standalone=not peering,
        peering_name=peering,
        # Distinct priorities: the highest runs, the others stand by (kopf pauses
        # every operator when peers of equal priority meet).
        priority=random.randint(1, 2**31 - 1) if peering else 0,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m devcluster.executor --kubeconfig FILE --work-dir DIR --images FILE`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from urllib.parse import urlparse

from kubernetes import client, config

import devcluster.executor as package
from devcluster.executor.kubelet import PodExecutor, log
from devcluster.executor.pod_spec import ApiEndpoint
from devcluster.image_store import ImageStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.executor", description=package.__doc__
    )
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--work-dir", required=True, type=Path, help="pods' volumes live here")
    parser.add_argument("--log-dir", type=Path, help="container output (default: WORK_DIR/logs)")
    parser.add_argument("--images", required=True, type=Path,
                        help="the cluster's image index (devcluster/image_store.py)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    api = config.new_client_from_config(args.kubeconfig)  # type: ignore[no-untyped-call]
    server = urlparse(api.configuration.host)
    executor = PodExecutor(
        client.CoreV1Api(api),
        args.work_dir,
        args.log_dir or args.work_dir / "logs",
        ImageStore(args.images),
        ApiEndpoint(server.hostname or "127.0.0.1", server.port or 443),
    )

    def leave(signum: int, _frame: object) -> None:
        # Raised in the main thread, this also breaks out of a blocking watch read.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    log.info("running every pod bound to a node, from images in %s", args.images)
    try:
        executor.run()
    finally:
        # Cluster down, or the test session ending: the pods' processes end too.
        executor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

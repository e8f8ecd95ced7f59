"""`bpnet sample` (`bpnet-sample`): a sample BodyPoseNet .tlt and a few images, for a first export.

The work is `stages.sample` (seeded, untrained BpNet weights encrypted as a
TAO `.tlt`; drawn images of several sizes, JPEG and PNG).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bodypose_exporter.cli import args as groups

HELP = "write a sample .tlt (seeded, untrained weights) and images"
STAGE = None
#: Keras' note that an uncompiled model has no metrics yet says nothing about a sample.
QUIET = ("tensorflow",)

EPILOG = """\
example:
  bpnet-sample -o sample -k nvidia_tlt --images 24
      sample/bpnet_sample.tlt and sample/images/sample_0000.jpg ...
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Write a sample BodyPoseNet .tlt (seeded, untrained weights) and images."
    p.epilog = EPILOG
    p.add_argument(
        "-o", "--output_dir", default="sample", help="where to write (default: ./sample)"
    )
    groups.add_key(p, required=True, help="key to encrypt the .tlt with")
    p.add_argument("--images", type=int, default=8, help="number of sample images (default: 8)")
    p.add_argument("--stages", type=int, default=3, help="refinement stages (TAO default: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and images")
    groups.add_codec(p, help="model-file cipher (default: auto, NVIDIA's when present)")


def run(args: argparse.Namespace) -> int:
    # Lazy: the sample stage builds a Keras model (TensorFlow start-up), which
    # `bpnet --help` and the other commands must not pay for.
    from bodypose_exporter.stages.sample import write_sample_images, write_sample_model

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "bpnet_sample.tlt"
    codec = write_sample_model(model_path, args.key, args.stages, args.seed, args.codec)
    images = write_sample_images(out / "images", args.images, args.seed)
    print(f"model  {model_path} ({model_path.stat().st_size} bytes, codec {codec})")
    print(f"images {out / 'images'} ({len(images)} files)")
    return 0

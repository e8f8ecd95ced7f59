"""`bpnet sample` (`bpnet-sample`): a sample BodyPoseNet .tlt and a few images, for a first export.

The work is `stages.sample` (seeded, untrained BpNet weights encrypted as a
TAO `.tlt`; drawn images of several sizes, JPEG and PNG). With `--trained`,
a narrow BpNet trained on drawn skeletons (a few minutes the first time,
then from the cache), its evaluation set (images and COCO person keypoints)
and calibration images: what `bpnet evaluate` needs to report a real AP.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bodypose_exporter.cli import args as groups
from bodypose_exporter.cli.paths import PathKind, mark
from bodypose_exporter.errors import UserError

HELP = "write a sample .tlt (seeded untrained weights, or --trained) and images"
STAGE = None
#: Keras' note that an uncompiled model has no metrics yet says nothing about a sample.
QUIET = ("tensorflow",)

EPILOG = """\
examples:
  bpnet-sample -o sample -k nvidia_tlt --images 24
      sample/bpnet_sample.tlt and sample/images/sample_0000.jpg ...
  bpnet-sample -o trained -k nvidia_tlt --trained --images 40
      trained/bpnet_sample.tlt (trained on drawn skeletons, input 192x256),
      trained/images/ + trained/person_keypoints.json (to evaluate on),
      trained/calibration/images/ (to calibrate on); then e.g.
  bpnet-export -m trained/bpnet_sample.tlt -k nvidia_tlt -d 192,256,3 -o trained/bpnet_model.etlt
  bpnet evaluate --annotations trained/person_keypoints.json --images trained/images \\
      --onnx trained/bpnet_model.onnx

--trained trains the first time (a few minutes on two CPU cores) and keeps the
weights in ${XDG_CACHE_HOME:-~/.cache}/bodypose-export/samples/<key>/, the key
a hash of the drawing, labelling, network and training code and settings.
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Write a sample BodyPoseNet .tlt (seeded, untrained weights) and images."
    p.epilog = EPILOG
    output_dir = p.add_argument(
        "-o", "--output_dir", default="sample", help="where to write (default: ./sample)"
    )
    mark(output_dir, PathKind.WRITE_DIR)
    groups.add_key(p, required=True, help="key to encrypt the .tlt with")
    p.add_argument("--images", type=int, default=8, help="number of sample images (default: 8)")
    p.add_argument("--stages", type=int, default=3, help="refinement stages (TAO default: 3)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for weights and images (with --trained: for the drawings only)",
    )
    groups.add_codec(p, help="model-file cipher (default: auto, NVIDIA's when present)")
    p.add_argument(
        "--trained", action="store_true",
        help="a small BpNet trained on drawn skeletons (cached after the first run) with "
        "--images annotated images to evaluate on and as many to calibrate on, instead of "
        "untrained weights",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    # Lazy: the sample stage builds a Keras model (TensorFlow start-up), which
    # `bpnet --help` and the other commands must not pay for.
    from bodypose_exporter.stages.sample import (
        write_sample_images,
        write_sample_model,
        write_trained_sample,
    )

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.trained:
        if args.stages != 3:
            raise UserError("--stages applies to the untrained sample; --trained has 2 stages")
        trained = write_trained_sample(out, args.key, args.images, args.seed, args.codec)
        how = "trained now" if trained.trained_now else "from the cache"
        print(
            f"model  {trained.model} ({trained.model.stat().st_size} bytes, codec "
            f"{trained.codec}; weights {how}, trained in {trained.training['seconds']} s)"
        )
        print(f"images {trained.images} ({args.images} files), annotations {trained.annotations}")
        print(f"calibration images {trained.calibration_images}")
        return 0
    model_path = out / "bpnet_sample.tlt"
    codec = write_sample_model(model_path, args.key, args.stages, args.seed, args.codec)
    images = write_sample_images(out / "images", args.images, args.seed)
    print(f"model  {model_path} ({model_path.stat().st_size} bytes, codec {codec})")
    print(f"images {out / 'images'} ({len(images)} files)")
    return 0

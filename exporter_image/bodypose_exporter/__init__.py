"""bodypose_exporter: turns a trained TAO BodyPoseNet model into deployable artifacts.

The package is what runs inside each export/build Job and behind the `bpnet-export`
CLI; both call the same stage functions.
"""

__version__ = "0.1.0"

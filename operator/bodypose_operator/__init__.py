"""bodypose_operator: the kopf operator for BodyPoseExport resources.

It never imports TensorFlow or TensorRT: it decides, builds Job manifests and
aggregates status; the work runs in the exporter image.
"""

__version__ = "0.1.0"

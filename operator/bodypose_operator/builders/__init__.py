"""Pure functions from a BodyPoseExport to the Kubernetes objects it needs."""

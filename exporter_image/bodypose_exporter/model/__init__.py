"""The BodyPoseNet (bpnet) network as TAO builds it, and its deploy-time variants."""

"""Where inputs come from and outputs go: local paths or s3:// URIs."""

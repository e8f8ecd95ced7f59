"""The local developer cluster: a real control plane built from Go modules, kwok
GPU pools, a kubelet stand-in that runs pods from their images, MinIO, and the demo.

Product code in its own right (`make cluster-up`, `make demo`); the tests use it
as fixtures (tests/infra/cluster.py). It drives the operator and the exporter
only through their images and command lines, never by importing them.
"""

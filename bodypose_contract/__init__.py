"""What the exporter and the operator must agree on, in one package both images install.

The two halves never import each other (`.importlinter`: "operator-apart"), yet they
share a wire format: the files a Job writes and the operator names, the manifest and
termination message a Job leaves and the operator reads, where a target's artifact
lives, and what each build backend supports. Each of those is written once here.

Only the standard library: the operator image installs this package without
TensorFlow, ONNX Runtime or TensorRT, and the `contract-apart` contract in
`.importlinter` keeps it from importing either half.

- `artifacts`: the artifact kinds a manifest lists and the file each is written as;
- `manifest`: the keys of `manifest.json` the other half reads, typed and versioned;
- `termination`: the Job's JSON termination message, typed and versioned;
- `target`: a target's identity and where its artifact lives;
- `backends`: what each build backend supports (precisions, capabilities, artifact suffix).
"""

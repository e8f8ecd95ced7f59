"""Offline evaluation: OKS keypoint AP of the FP32 model and of a built engine on COCO data.

- `preprocess`: TAO's strict-mode input and the way back to image pixels;
- `skeleton`: BpNet's 18 joints, its PAF topology, the mapping to COCO's 17;
- `peaks`, `connections`, `grouping`, `decode`: TAO's bottom-up decoding;
- `coco`: COCO results and pycocotools' keypoint AP;
- `dataset`: an evaluation set checked (COCO person keypoints, files there, maxImages);
- `sources`: the set from a path or s3://, refusals naming the URI and the credentials;
- `digest`: the set's annotations and images as two SHA-256 digests (same set, or not);
- `inference`: a runner over the set -> `ap_figures.ApFigures` (AP, AP50, AP75, APm, APl, counts);
- `ap_gate`: the AP drop limit per precision (AP points) and its message;
- `artifact_ap`: what the export and build stages call (`evaluate_artifact`, `engine_ap_gate`);
- `__main__`: `python -m bodypose_exporter.evaluation`, an alias of `bpnet evaluate`.
"""

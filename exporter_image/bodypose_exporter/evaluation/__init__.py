"""Offline evaluation: OKS keypoint AP of the FP32 model and of a built engine on COCO data.

- `preprocess`: TAO's strict-mode input and the way back to image pixels;
- `skeleton`: BpNet's 18 joints, its PAF topology, the mapping to COCO's 17;
- `peaks`, `connections`, `grouping`, `decode`: TAO's bottom-up decoding;
- `coco`: COCO results and pycocotools' keypoint AP;
- `inference`: a runner over an annotated image set;
- `__main__`: `python -m bodypose_exporter.evaluation`, an alias of `bpnet evaluate`.
"""

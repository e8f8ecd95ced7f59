"""INT8 calibration algorithms for BodyPoseNet: tensorfile, streaming calibration, cal.bin, QDQ.

Algorithms only: no S3, no staging, no flags. They run on local files in
`stages.local_calibration` (`run_calibration`), and on paths or s3:// URIs
through the stage around it, `stages.calibrate` (`preflight`, `calibrate`).
Modules, one job each:

- `images`, `preprocess`, `batches`: the image directory, TAO's strict-mode
  preprocessing, parallel decoding into batches;
- `tensorfile`: TAO's HDF5 TensorFile (`--cal_data_file`);
- `tensors`, `augment`, `histogram`, `collect`: which tensors, the calibration
  graph, streaming |x| histograms, the forward-pass loop;
- `thresholds`: entropy (TensorRT's KL search), percentile and minmax;
- `calibration_cache`: `cal.bin` in TensorRT's text format;
- `qdq`, `agreement`: the QDQ model and how closely it follows FP32 (figures
  from `bodypose_exporter.output_agreement`, shared with engine verification).
"""

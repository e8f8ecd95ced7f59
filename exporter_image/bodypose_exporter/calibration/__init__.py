"""INT8 calibration algorithms for BodyPoseNet: tensorfile, streaming calibration, cal.bin, QDQ.

Algorithms only: no S3, no staging, no flags. The stage that runs them on
files (local or s3://) is `stages.calibrate` (`run_calibration`, `preflight`,
`calibrate`). Modules, one job each:

- `images`, `preprocess`, `batches`: the image directory, TAO's strict-mode
  preprocessing, parallel decoding into batches;
- `tensorfile`: TAO's HDF5 TensorFile (`--cal_data_file`);
- `tensors`, `augment`, `histogram`, `collect`: which tensors, the calibration
  graph, streaming |x| histograms, the forward-pass loop;
- `thresholds`: entropy (TensorRT's KL search), percentile and minmax;
- `calibration_cache`: `cal.bin` in TensorRT's text format;
- `qdq`, `agreement`: the QDQ model and how closely it follows FP32 (figures
  from `bodypose_exporter.metrics`, shared with engine verification).
"""

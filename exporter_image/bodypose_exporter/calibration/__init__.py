"""INT8 calibration for BodyPoseNet: tensorfile, streaming entropy calibration, cal.bin, QDQ.

Entry point: `stage.run_calibration(onnx_path, CalibrationOptions(...), out_dir)`.
Modules, one job each:

- `images`, `preprocess`, `batches`: the image directory, TAO's strict-mode
  preprocessing, parallel decoding into batches;
- `tensorfile`: TAO's HDF5 TensorFile (`--cal_data_file`);
- `tensors`, `augment`, `histogram`, `collect`: which tensors, the calibration
  graph, streaming |x| histograms, the forward-pass loop;
- `thresholds`: entropy (TensorRT's KL search), percentile and minmax;
- `calibration_cache`: `cal.bin` in TensorRT's text format;
- `qdq`, `agreement`: the QDQ model and how closely it follows FP32.
"""

from bodypose_exporter.calibration.stage import (
    CalibrationOptions,
    CalibrationResult,
    run_calibration,
)

__all__ = ["CalibrationOptions", "CalibrationResult", "run_calibration"]

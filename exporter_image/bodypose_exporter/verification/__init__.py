"""Does a built engine agree with the FP32 reference? Figures, gates, reference inputs.

- `agreement_figures`: max absolute difference, cosine similarity, heatmap-peak agreement;
- `agreement_gates`: default gates per precision, overrides, the failure message;
- `reference`: the inputs and FP32 ONNX Runtime outputs to compare against
  (the export's `reference.npz`, or images preprocessed as TAO does);
- `verify`: run an engine runner over the reference and judge it.
"""

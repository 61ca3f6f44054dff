"""Importers: models from other frameworks into af graphs. torch_export.py (af.from_torch,
af.trace_torch) maps torch.export's core ATen graph through the ATen table (aten.py, one
entry per op; af.register_aten adds one); onnx_import.py (af.from_onnx, af.trace_onnx) maps
ONNX graphs through the ONNX table (onnx_ops.py). Imports the compiler and the graph front end."""

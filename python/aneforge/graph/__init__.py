"""The graph front end: Tensor and the graph's leaves (tensor.py), the op functions generated
from the C++ op table (ops.py; all of them as one namespace in functional.py), parameters,
buffers and noise (state.py), reverse-mode gradients (autodiff.py), and the recording and
replay of flexible-batch graphs (trace.py, flex.py). Imports only the C++ core below it."""

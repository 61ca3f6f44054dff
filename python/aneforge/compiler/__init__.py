"""Compilation: af.compile (build.py) into one program and the Net that runs it (net.py), per
batch size for flexible graphs (flexnet.py); weight compression with its accuracy gates
(compress.py, gate.py, gptq.py); the mil backend's bridge to the MIL interpreter (milnet.py).
Imports the graph front end, mil/ and the C++ core."""

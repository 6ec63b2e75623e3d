"""Demo workspace content: small, real models built on the spot (see `models`).

Importing this package is cheap; the heavy libraries (scikit-learn, onnx, onnxruntime)
are only loaded when the demo models are built, and come with the `demo` extra.
"""

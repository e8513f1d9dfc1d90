"""CNN Lab engine: pure torch/numpy computations behind every page.

One module per concept (``arithmetic``, ``images``, ``conv``, ``pooling``, ``receptive_field``,
``models``, ``training``, ...). Nothing here imports Streamlit, so every function can be used from
a notebook, the command line or a test, and PyTorch is the oracle the tests compare against.
"""

__version__ = "0.1.0"

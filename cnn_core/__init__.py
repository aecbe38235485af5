"""CNN Lab core: configurable LeNet-5, shape arithmetic, data, training, runs and explanations.

This package never imports Streamlit: everything the app shows can be produced from a
Python shell or the ``python -m cnn_core`` command line.
"""

__version__ = "0.1.0"

"""The network: PyTorch modules built from a ``ModelConfig``, and checkpoints on disk."""

from cnn_core.model.network import (  # the names callers use: ``from cnn_core.model import ...``
    ACTIVATION_MODULES,
    ConvNet,
    Normalize,
    build_model,
    count_params,
)

__all__ = ["ACTIVATION_MODULES", "build_model", "ConvNet", "count_params", "Normalize"]

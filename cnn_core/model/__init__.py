"""The network: PyTorch modules built from a ``ModelConfig``, and checkpoints on disk."""

from cnn_core.model.network import (  # the names callers use: ``from cnn_core.model import ...``
    ACTIVATION_MODULES,
    Conv2d,
    ConvNet,
    Normalize,
    build_model,
    count_params,
    max_pool_2x2,
)

__all__ = ["ACTIVATION_MODULES", "Normalize", "Conv2d", "max_pool_2x2", "ConvNet", "build_model", "count_params"]

"""torch.nn-style building blocks: ``functional`` and the modules."""
from . import functional  # noqa: F401
from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activation_all
from .container import *  # noqa: F401,F403
from .container import __all__ as _container_all
from .module import *  # noqa: F401,F403
from .module import __all__ as _module_all
from .parameter import *  # noqa: F401,F403
from .parameter import __all__ as _parameter_all
from .shape import *  # noqa: F401,F403
from .shape import __all__ as _shape_all
from .sparse import *  # noqa: F401,F403
from .sparse import __all__ as _sparse_all
from .dropout import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .linear import __all__ as _linear_all
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization_all
from .pooling import __all__ as _pooling_all
from .dropout import __all__ as _dropout_all

__all__ = ["functional", *_module_all, *_parameter_all, *_container_all, *_shape_all, *_activation_all, *_sparse_all,
           *_dropout_all, *_pooling_all, *_normalization_all,
           *_linear_all, *_conv_all]

"""torch.nn-style building blocks: ``functional`` and the modules."""
from . import functional  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all

__all__ = ["functional", *_modules_all]

"""torch.nn-style building blocks: ``functional`` and the modules."""
from . import functional  # noqa: F401

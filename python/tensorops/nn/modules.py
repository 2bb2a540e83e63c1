"""nn modules (being written)."""
__all__ = []

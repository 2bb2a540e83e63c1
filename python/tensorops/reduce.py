"""The reduce family (being written)."""
__all__ = []

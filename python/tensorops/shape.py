"""The shape family (being written)."""
__all__ = []

"""The norm family (being written)."""
__all__ = []

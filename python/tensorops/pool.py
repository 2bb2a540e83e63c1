"""The pool family (being written)."""
__all__ = []

"""The gemm family (being written)."""
__all__ = []

"""Linear algebra as graph functions with torch.linalg's names, for small matrices (n <= 32):
fixed sequences of ops unrolled into the program, so they compile and run like any layer.
docs/science.md tables the measured error against size and condition number."""
from ._decomp import LstsqResult, cholesky, lstsq, lu, qr, solve_triangular
from ._jacobi import eigh, eigvalsh, svd, svdvals
from ._solve import det, inv, norm, slogdet, solve

__all__ = ["inv", "solve", "det", "slogdet", "norm", "cholesky", "lu", "qr", "solve_triangular", "lstsq",
           "LstsqResult", "eigh", "eigvalsh", "svd", "svdvals"]

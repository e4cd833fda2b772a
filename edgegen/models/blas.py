"""Matrix products through BLAS, with the floating-point flags of the kernel ignored and its result checked.

Some BLAS kernels raise the FP "invalid" flag on finite operands and still return finite results (OpenBLAS on
AMD EPYC does, inside ``np.matmul``); numpy turns the flag into ``RuntimeWarning: invalid value encountered in
matmul``. The flag then says nothing about the result, so it is ignored for the kernel call alone and the result
itself is checked: a non-finite result of finite operands (an overflow) raises :class:`NonFiniteError`. Every
``@``/``np.matmul`` in edgegen goes through :func:`matmul`; elementwise arithmetic keeps numpy's warnings.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgegen.models.errors import NonFiniteError

F64 = npt.NDArray[np.float64]


def matmul(a: npt.ArrayLike, b: npt.ArrayLike) -> F64:
    """``a @ b`` in float64. Non-finite operands give what numpy gives (their NaN or infinity carries through);
    finite operands give a finite result or :class:`NonFiniteError`."""
    x = np.asarray(a, dtype=np.float64)
    m = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # the kernel's flags, not the result: checked below
        out = np.asarray(np.matmul(x, m), dtype=np.float64)
    if not np.isfinite(out).all() and np.isfinite(x).all() and np.isfinite(m).all():
        raise NonFiniteError(f"a matrix product of finite {x.shape} and {m.shape} operands overflowed")
    return out

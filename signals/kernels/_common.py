"""Shared pieces of the kernels: JIT options, NaN-head allocation, TA-Lib's zero test and true range.

Private to ``signals.kernels``; see the package docstring for the conventions.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# TA_IS_ZERO threshold of TA-Lib (ta_func/ta_utility.h): an absolute 1e-8.
_TA_EPSILON = 1e-8
# Division by zero gives inf/NaN instead of raising: every division that can meet a
# zero is guarded explicitly, and the per-division checks would cost speed and code size.
_JIT: dict[str, Any] = {"cache": True, "error_model": "numpy"}
# Recursions also allow fused multiply-add contraction (only that; see the docstring).
_JIT_FMA: dict[str, Any] = {**_JIT, "fastmath": {"contract"}}
# Index cast for hot loops: numba wraps negative signed indices (x[-1]), which costs
# three integer instructions per access that LLVM cannot drop when the start of the loop
# is a runtime value (s + window - 1); an unsigned index has no wraparound. Only used
# where the index is non-negative by construction (no bounds checks either way).
_u = np.uint64
# NumPy advises transparent huge pages for arrays of 4 MiB and more (madvise
# MADV_HUGEPAGE, numpy's alloc.c); arrays allocated by numba get no such advice, and on
# Linux with THP in "madvise" mode each fresh 8 MB output then costs ~2,000 4 KiB page
# faults instead of a few: most of the gap to TA-Lib on three-output kernels (MACD,
# BBANDS). Outputs of that size get the same advice as NumPy's (Linux only; a no-op
# elsewhere). It is only advice: values and layout are unchanged.
_HUGEPAGE_ADVICE = sys.platform.startswith("linux")
_MADV_HUGEPAGE = 14
_HUGEPAGE_MIN_ITEMS = (1 << 22) // 8


@njit(**_JIT)
def _first_valid_nb(x: np.ndarray) -> int:
    """Index of the first non-NaN value of ``x`` (len(x) when there is none)."""
    for i in range(x.shape[0]):
        if not np.isnan(x[i]):
            return i
    return x.shape[0]


@njit(**_JIT)
def _first_valid3_nb(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> int:
    """First index where none of three inputs is NaN (TA-Lib wrapper's begidx)."""
    return max(_first_valid_nb(a), max(_first_valid_nb(b), _first_valid_nb(c)))


@intrinsic
def _advise_huge_pages_nb(typingctx, arr):
    """``madvise(MADV_HUGEPAGE)`` on the whole pages inside a contiguous array (Linux only)."""
    if not isinstance(arr, types.Array) or arr.layout not in "CF":
        return None

    def codegen(context, builder, signature, args):
        if not _HUGEPAGE_ADVICE:
            return context.get_dummy_value()
        arrty = signature.args[0]
        ary = context.make_array(arrty)(context, builder, args[0])
        size_t = context.get_value_type(types.uintp)
        itemsize = context.get_abi_sizeof(context.get_data_type(arrty.dtype))
        start = builder.ptrtoint(ary.data, size_t)
        end = builder.add(start, builder.mul(ary.nitems, ir.Constant(size_t, itemsize)))
        # Round the start up and the end down to page boundaries: only the array's own pages.
        mask = ir.Constant(size_t, ~4095 & ((1 << size_t.width) - 1))
        start = builder.and_(builder.add(start, ir.Constant(size_t, 4095)), mask)
        end = builder.and_(end, mask)
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(8).as_pointer(), size_t, ir.IntType(32)])
        madvise = cgutils.get_or_insert_function(builder.module, fnty, "madvise")
        with builder.if_then(builder.icmp_unsigned(">", end, start)):
            builder.call(madvise, [builder.inttoptr(start, ir.IntType(8).as_pointer()),
                                   builder.sub(end, start), ir.Constant(ir.IntType(32), _MADV_HUGEPAGE)])
        return context.get_dummy_value()

    return types.void(arr), codegen


@njit(**_JIT)
def _nan_head_nb(n: int, start: int) -> np.ndarray:
    """Uninitialised float64 array of length n whose first ``start`` values are NaN.

    Callers write every value from ``start`` on; skipping a full NaN fill saves a
    pass over memory on million-bar inputs. Large arrays get NumPy's huge-page advice
    (see ``_HUGEPAGE_ADVICE``).
    """
    out = np.empty(n)
    if n >= _HUGEPAGE_MIN_ITEMS:
        _advise_huge_pages_nb(out)  # type: ignore[call-arg]  # numba supplies the typing context
    out[: min(max(start, 0), n)] = np.nan
    return out


@njit(**_JIT)
def _ta_is_zero_nb(v: float) -> bool:
    """TA-Lib's TA_IS_ZERO: |v| < 1e-8 (an absolute threshold, as in TA-Lib)."""
    return -_TA_EPSILON < v < _TA_EPSILON


@njit(**_JIT)
def _true_range_nb(high: float, low: float, prev_close: float) -> float:
    """TA-Lib's TRUE_RANGE macro: max(h - l, |h - prev c|, |l - prev c|)."""
    out = high - low
    tmp = abs(high - prev_close)
    out = tmp if tmp > out else out
    tmp = abs(low - prev_close)
    return tmp if tmp > out else out

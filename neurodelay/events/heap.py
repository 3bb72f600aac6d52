"""Array-backed binary min-heaps for the compiled event loops (numba).

Two kinds, both operating in place on arrays that the caller owns (no array
is created here, so calls from a hot loop need no reference counting; LLVM
inlines them):

* a plain heap of (key, value) pairs in two parallel arrays ``hk`` (keys, e.g.
  arrival times in s) and ``hs`` (values, e.g. slot indices), of `size` items;
* an indexed heap over items 0..n-1: ``key[item]`` (e.g. predicted spike time
  in s), ``heap[slot]`` (the item in a heap slot) and ``pos[item]`` (its slot),
  whose keys are changed in place and then restored with a sift.

Numba's on-disk cache of a kernel only notices edits to the kernel's own file:
after changing this module, clear the cache (``make clean`` or delete
``build/cache/numba``) so kernel.py and adjoint_kernel.py recompile.
"""

from __future__ import annotations

from numba import njit

__all__ = ["heap_fix_top", "heap_push", "indexed_sift_down", "indexed_sift_up"]


@njit(cache=True)
def heap_push(hk, hs, size, key, value):
    """Add (key, value) to the plain heap of `size` items; returns the new size."""
    k = size
    while k > 0:
        parent = (k - 1) >> 1
        if hk[parent] <= key:
            break
        hk[k] = hk[parent]
        hs[k] = hs[parent]
        k = parent
    hk[k] = key
    hs[k] = value
    return size + 1


@njit(cache=True)
def heap_fix_top(hk, hs, size):
    """Restore the plain heap of `size` items after the entry at slot 0 was replaced by a larger one."""
    key, value = hk[0], hs[0]
    k = 0
    while True:
        child = 2 * k + 1
        if child >= size:
            break
        if child + 1 < size and hk[child + 1] < hk[child]:
            child += 1
        if key <= hk[child]:
            break
        hk[k] = hk[child]
        hs[k] = hs[child]
        k = child
    hk[k] = key
    hs[k] = value


@njit(cache=True)
def indexed_sift_up(key, heap, pos, k):
    """Indexed heap: move the item in slot k up after its key decreased."""
    it = heap[k]
    kk = key[it]
    while k > 0:
        parent = (k - 1) >> 1
        ip = heap[parent]
        if key[ip] <= kk:
            break
        heap[k] = ip
        pos[ip] = k
        k = parent
    heap[k] = it
    pos[it] = k


@njit(cache=True)
def indexed_sift_down(key, heap, pos, k, size):
    """Indexed heap of `size` items: move the item in slot k down after its key increased."""
    it = heap[k]
    kk = key[it]
    while True:
        child = 2 * k + 1
        if child >= size:
            break
        ic = heap[child]
        if child + 1 < size and key[heap[child + 1]] < key[ic]:
            child += 1
            ic = heap[child]
        if kk <= key[ic]:
            break
        heap[k] = ic
        pos[ic] = k
        k = child
    heap[k] = it
    pos[it] = k

"""Task generators and dataset loaders; each returns a :class:`TaskData` (spike times in seconds).

Generated tasks: :func:`yinyang`, :func:`sequence`, :func:`mts_xor`,
:func:`digits` (registered by name in :data:`TASKS`). Files in the SHD
HDF5 layout: :func:`load_shd`, :func:`load_ssc`, :func:`load_braille`
(and :func:`write_shd_like` to write one). Augmentations for such data:
:func:`channel_shift`, :func:`blend`.
"""

from .augment import blend, channel_shift
from .base import TaskData, concatenate
from .digits import digit_permutation, digits
from .hdf5 import load_braille, load_shd, load_spikes_hdf5, load_ssc, write_shd_like
from .mts_xor import mts_xor, mts_xor_moro
from .sequence import sequence
from .yinyang import yinyang, yinyang_class, yinyang_points

__all__ = ["TaskData", "concatenate", "yinyang", "yinyang_class", "yinyang_points", "sequence", "mts_xor",
           "mts_xor_moro", "digits", "digit_permutation", "load_spikes_hdf5", "load_shd", "load_ssc", "load_braille",
           "write_shd_like", "channel_shift", "blend", "TASKS"]

#: task name -> generator function returning a TaskData (for ``neurodelay train TASK``)
TASKS = {
    "yinyang": yinyang,
    "sequence": sequence,
    "mts_xor": mts_xor,
    "digits": digits,
}

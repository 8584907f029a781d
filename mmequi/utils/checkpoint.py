"""Load mmengine-saved and official OpenMMLab checkpoints under torch >= 2.6 without unsafe unpickling.

torch >= 2.6 loads with ``weights_only=True``: only allow-listed globals may appear in a pickle. Checkpoints
written by mmengine's Runner carry, besides tensors, a ``message_hub`` with ``HistoryBuffer`` objects (numpy
arrays, numpy scalars and the buffer's statistics methods, pickled as ``getattr(HistoryBuffer, 'min')``) and
sometimes a ``ConfigDict``. We allow-list exactly those types. ``builtins.getattr`` itself is *not* allowed:
a restricted stand-in answers only for the HistoryBuffer statistics methods, so a file cannot reach any other
attribute. Everything else still fails with torch's UnpicklingError.
"""
import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer


# The statistics methods every HistoryBuffer registers on construction (``_set_default_statistics``).
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_method(owner, name):
    """Stand-in for ``getattr`` during unpickling: only HistoryBuffer's statistics methods."""
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'checkpoint asks for attribute {name!r} of {owner!r}: only HistoryBuffer statistics methods are '
        'allowed')


def _numpy_globals():
    core = np._core if hasattr(np, '_core') else np.core  # numpy >= 2 moved the module
    dtype_classes = [type(np.dtype(t)) for t in
                     (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                      np.float16, np.float32, np.float64)]
    return [core.multiarray.scalar, core.multiarray._reconstruct, np.ndarray, np.dtype, *dtype_classes]


SAFE_CHECKPOINT_GLOBALS = [
    HistoryBuffer,
    ConfigDict,
    (_history_buffer_method, 'builtins.getattr'),
    *_numpy_globals(),
]


def allow_mmengine_checkpoints():
    """Allow-list the exact types of mmengine/OpenMMLab checkpoints for ``torch.load(weights_only=True)``.

    Idempotent; called when mmequi is imported, so mmengine's ``load_checkpoint`` (and ``tools/test.py``) work
    on checkpoints saved by ``tools/train.py`` and on official model-zoo files.
    """
    if hasattr(torch.serialization, 'add_safe_globals'):  # torch < 2.4 unpickles everything anyway
        torch.serialization.add_safe_globals(SAFE_CHECKPOINT_GLOBALS)

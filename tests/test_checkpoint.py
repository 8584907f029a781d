"""Safe checkpoint loading under torch >= 2.6 (weights_only=True): mmengine-saved files load, others are refused."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import load_checkpoint, save_checkpoint

import mmequi  # noqa: F401  (allow-lists the checkpoint types on import)


def _mmengine_style_checkpoint(path):
    """What mmengine's Runner writes: meta with numpy scalars and a ConfigDict, a message hub of HistoryBuffers."""
    hub = MessageHub('test_checkpoint')
    for v in (1.0, 0.5, 0.25):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', np.int64(3))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ckpt = dict(meta=dict(seed=np.int64(0), lr=np.float32(0.01), cfg=ConfigDict(model=dict(type='X')),
                          dataset_meta=dict(classes=('a', 'b'), palette=[[1, 2, 3]])),
                state_dict=model.state_dict(), message_hub=hub.state_dict())
    save_checkpoint(ckpt, str(path))
    return model


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'mmengine.pth'
    model = _mmengine_style_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt['meta']['seed'] == 0 and isinstance(ckpt['meta']['cfg'], ConfigDict)
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == pytest.approx(7 / 12)
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    load_checkpoint(fresh, str(path), strict=True)  # mmengine's own loader (torch.load defaults)
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def test_same_checkpoint_fails_without_mmequi(tmp_path):
    """The allow-list is what makes it load: a fresh interpreter without mmequi refuses the same file."""
    path = tmp_path / 'mmengine.pth'
    _mmengine_style_checkpoint(path)
    code = f'import torch\ntry:\n    torch.load({str(path)!r})\nexcept Exception as e:\n    print(type(e).__name__)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == 'UnpicklingError'


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


class _AsksForOtherAttribute:
    def __reduce__(self):  # getattr is only stood in for HistoryBuffer statistics methods
        return getattr, (HistoryBuffer, 'update')


class _ArbitraryClass:
    pass


@pytest.mark.parametrize('payload', ['command', 'getattr', 'class'])
def test_disallowed_objects_are_refused(tmp_path, payload):
    marker = tmp_path / 'pwned'
    obj = {'command': _RunsCommand(marker), 'getattr': _AsksForOtherAttribute(),
           'class': _ArbitraryClass()}[payload]
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': obj}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(nn.Linear(1, 1), str(path))
    assert not marker.exists()

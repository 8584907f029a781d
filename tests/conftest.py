import os.path as osp
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # tools/ and mmequi importable from a plain checkout

torch.set_num_threads(2)


@pytest.fixture(scope='session')
def repo_root():
    return ROOT

"""Shared fixtures: one demo segmentor, one demo detector, one seed policy, one thread count."""
import copy
import os.path as osp
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # tools/, testbed/ and mmequi importable from a plain checkout

SEG_CONFIG = osp.join(ROOT, 'configs/demo/fcn_r18-d8_synthetic-cityscapes.py')
SEG_CHECKPOINT = osp.join(ROOT, 'checkpoints/fcn_r18-d8_synthetic-cityscapes.pth')
ROTATION_HEAD = osp.join(ROOT, 'checkpoints/rotation-head_fcn_r18-d8_synthetic-cityscapes.pth')
DET_CONFIG = osp.join(ROOT, 'configs/demo/faster-rcnn_r18_fpn_synthetic-coco.py')
DET_CHECKPOINT = osp.join(ROOT, 'checkpoints/faster-rcnn_r18_fpn_synthetic-coco.pth')

torch.set_num_threads(2)  # the machine's cores; set once for the whole suite


def seeded(seed=0):
    """Seed policy: every random draw of an attack, defense or view comes from an explicit CPU generator."""
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True)
def global_seed():
    """Code that draws from torch's global RNG (model init, samplers) sees the same numbers in every test."""
    torch.manual_seed(0)


@pytest.fixture(scope='session')
def repo_root():
    return ROOT


def build_demo_model(config, checkpoint, scope):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint

    import mmequi  # noqa: F401  (allow-lists the checkpoint types)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(Config.fromfile(config).model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    return model.eval()


@pytest.fixture(scope='session')
def demo_segmentor():
    """The Cityscapes-format demo FCN-R18 with its committed weights (eval mode; tests must not change it)."""
    return build_demo_model(SEG_CONFIG, SEG_CHECKPOINT, 'mmseg')


@pytest.fixture(scope='session')
def demo_detector(tmp_path_factory):
    """(the COCO-format demo Faster R-CNN with its committed weights, 3 test items of mmdet's CocoDataset and test
    pipeline on freshly generated data)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmdet.registry import DATASETS

    from testbed import generate_coco
    root = generate_coco(tmp_path_factory.mktemp('coco'), num_train=1, num_val=3)
    dataset_cfg = copy.deepcopy(Config.fromfile(DET_CONFIG).test_dataloader.dataset)
    dataset_cfg.data_root = str(root)
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(dataset_cfg)
    return build_demo_model(DET_CONFIG, DET_CHECKPOINT, 'mmdet'), [dataset[i] for i in range(3)]

"""Every shipped robustness config builds and runs through tools/test.py on synthetic data of its format (random
weights for the official models, small images, few steps), so configs cannot rot; and --attack / --defense switch
one model config between clean, attacked and defended runs."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmdet.registry import MODELS as DET_MODELS
from mmseg.registry import MODELS as SEG_MODELS

import mmequi  # noqa: F401
from testbed import generate_cityscapes, generate_coco, generate_voc
from testbed import COCO_CLASSES
from tools import test as test_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHIPPED = sorted(glob.glob(osp.join(ROOT, 'configs/equivariance/*/*.py')) +
                 glob.glob(osp.join(ROOT, 'configs/demo/*_pgd-*.py')))
SEG_CONFIGS = [p for p in SHIPPED if osp.basename(p).startswith(('pspnet', 'deeplabv3', 'fcn'))]
DET_CONFIGS = [p for p in SHIPPED if p not in SEG_CONFIGS]
# Few steps, two views: the configs' wiring is under test here, not the method's strength. The configs state attack
# and defense once, at the top level, so --cfg-options reach them.
FAST = {'attack.steps': 1, 'defense.steps': 1, 'defense.num_views': 2}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    generate_voc(root / 'VOCdevkit' / 'VOC2007', num_train=1, num_val=1)  # segmentation and detection files
    return dict(cityscapes=str(generate_cityscapes(root / 'cityscapes', num_train=1, num_val=1)),
                voc=str(root / 'VOCdevkit' / 'VOC2007'), voc_det=str(root / 'VOCdevkit') + '/',
                coco=str(generate_coco(root / 'coco', num_train=1, num_val=2)) + '/')


def random_checkpoint(cfg, path, options=None):
    cfg.merge_from_dict(options or {})
    scope = cfg.default_scope
    with DefaultScope.overwrite_default_scope(scope):
        model = (SEG_MODELS if scope == 'mmseg' else DET_MODELS).build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def run(config, checkpoint, work_dir, data_root, options, extra=()):
    opts = {'test_dataloader.dataset.data_root': data_root, 'test_dataloader.num_workers': 0,
            'test_dataloader.persistent_workers': False, **options}
    metrics = test_tool.main([config, checkpoint, '--work-dir', str(work_dir), *extra, '--cfg-options'] +
                             [f'{k}={v}' for k, v in opts.items()])
    (robustness, ) = glob.glob(osp.join(str(work_dir), '*', 'robustness.json'))
    with open(robustness) as f:
        return metrics, json.load(f)


def test_every_official_config_is_covered():
    names = {osp.basename(p) for p in SHIPPED}
    for model in ('pspnet_r50-d8', 'deeplabv3_r50-d8'):
        for dataset in ('cityscapes-512x1024', 'voc12aug-512x512'):
            assert any(n.startswith(model) and dataset in n for n in names), (model, dataset)
    for name in ('faster-rcnn_r50_fpn_1x_coco', 'mask-rcnn_r50_fpn_1x_coco', 'faster-rcnn_r50_fpn_1x_voc0712',
                 'faster-rcnn_r18_fpn_synthetic-coco'):
        assert any(n.startswith(name) for n in names), name


@pytest.mark.parametrize('config', SEG_CONFIGS, ids=osp.basename)
def test_shipped_seg_config_runs(tmp_path, data, config):
    cfg = Config.fromfile(config)
    assert cfg.custom_hooks[0].type == 'RobustTestHook' and cfg.load_from
    fmt = 'voc' if 'voc' in osp.basename(config) else 'cityscapes'
    options = dict(FAST)
    if osp.basename(config).startswith('fcn_r18'):  # demo: the committed checkpoint, its own image size
        checkpoint = osp.join(ROOT, cfg.load_from)
    else:  # official: random weights, small images instead of 512×1024 / 512×512
        checkpoint = random_checkpoint(cfg, tmp_path / 'random.pth')
        options['test_dataloader.dataset.pipeline.1.scale'] = '(128,64)'
    metrics, robustness = run(config, checkpoint, tmp_path / 'work', data[fmt], options)
    for key in ('mIoU', 'aAcc', 'equivariance/clean', 'equivariance/attacked', 'equivariance/purified'):
        assert key in metrics, key
    assert robustness['settings']['attack']['type'] == 'PGD' and robustness['settings']['attack']['steps'] == 1
    assert robustness['settings']['defense']['type'] == 'EquivariancePurifier'
    assert (robustness['settings']['defense']['steps'], robustness['settings']['defense']['num_views']) == (1, 2)
    assert set(robustness['seconds_per_image']) == {'attack', 'defense'}


def test_attack_and_defense_switches(tmp_path, data):
    config = osp.join(ROOT, 'configs/demo/fcn_r18-d8_synthetic-cityscapes.py')
    checkpoint = osp.join(ROOT, 'checkpoints/fcn_r18-d8_synthetic-cityscapes.pth')
    attack = tmp_path / 'attack.py'
    attack.write_text("attack = dict(type='MIM', eps=4, step_size=1, steps=2)\n")
    defense = tmp_path / 'defense.py'
    defense.write_text("defense = dict(type='EquivariancePurifier', num_views=2, steps=2)\n")
    show = tmp_path / 'show'
    metrics, robustness = run(config, checkpoint, tmp_path / 'both', data['cityscapes'], {},
                              ['--attack', str(attack), '--defense', str(defense), '--show-dir', str(show)])
    assert robustness['settings']['attack']['type'] == 'MIM' and 'equivariance/purified' in metrics
    (png, ) = show.glob('*.png')
    import mmcv
    # titled panels: ground truth | clean | attacked | purified | attacked − clean | purified − attacked
    assert mmcv.imread(str(png)).shape == (22 + 128, 6 * 256, 3)
    assert show.parent == tmp_path  # an absolute --show-dir stays where it is
    assert not list((tmp_path / 'both').rglob('vis_image'))  # nothing written through the visualizer's backends
    metrics, robustness = run(config, checkpoint, tmp_path / 'clean', data['cityscapes'], {},
                              ['--attack', 'none', '--defense', 'none'])
    assert robustness['settings']['attack'] is None and robustness['seconds_per_image'] == {}
    assert 'equivariance/clean' in metrics and 'equivariance/attacked' not in metrics
    with pytest.raises(FileNotFoundError, match="unknown attack 'pgd_eps999'.*pgd_linf_eps4_50steps"):
        test_tool.main([config, checkpoint, '--attack', 'pgd_eps999'])


def test_a_config_stating_attack_twice_differently_is_refused(tmp_path):
    """The old way: the hook entry copies the top-level attack ({{_base_.attack}}); a --cfg-options on the top level
    then leaves a copy that disagrees. Refused, naming both, before any work (no checkpoint is even read)."""
    config = tmp_path / 'twice.py'
    config.write_text(f"_base_ = [{osp.join(ROOT, 'configs/demo/fcn_r18-d8_synthetic-cityscapes_pgd-linf-eps4_equivariance.py')!r}]\n"
                      "custom_hooks = [dict(type='RobustTestHook', attack={{_base_.attack}}, seed=0)]\n")
    test_tool_args = [str(config), 'missing.pth', '--work-dir', str(tmp_path / 'work')]
    with pytest.raises(ValueError, match="states `attack` twice and they disagree: top level .*'eps': 8.*drop attack="):
        test_tool.main(test_tool_args + ['--cfg-options', 'attack.eps=8'])


def test_one_source_rule():
    from mmequi.apis.config import stated_once
    pgd = dict(type='PGD', eps=4)
    assert stated_once('attack', None, pgd) == pgd  # the top level when the hook entry omits it
    assert stated_once('attack', pgd, None) == pgd  # the entry's own in a config with none at the top level
    assert stated_once('attack', dict(pgd), pgd) == pgd  # the same twice is one
    with pytest.raises(ValueError, match='states `defense` twice'):
        stated_once('defense', dict(type='EquivariancePurifier'), dict(type='EquivariancePurifier', eps=4))


@pytest.mark.parametrize('name, kind, scales', [
    ('equivariance_flip', 'HFlip', None), ('equivariance_fast', 'Resize', None), ('tta', None, (1.0, 1.5)),
    ('tta_flip', None, (1.0,)), ('equivariance_flip_tta', 'HFlip', (1.0, 1.5)),
    ('equivariance_fast_flip_merge', 'Resize', (1.0,)), ('tta_flip_wbf', None, (1.0,)),
    ('equivariance_fast_flip_wbf', 'Resize', (1.0,)), ('equivariance_fast_eps8_flip_wbf', 'Resize', (1.0,))])
def test_shipped_presets_build_what_they_say(name, kind, scales):
    from mmequi.apis.config import load_component
    from mmequi.registry import DEFENSES, build
    defense = build(DEFENSES, load_component('defense', name), 'defense')
    if scales is not None:  # a detector's merge: NMS, or weighted boxes fusion where the name says so
        assert defense.box_merge == ('wbf' if name.endswith('_wbf') else 'nms')
    if kind is None:  # the model's own TTA: no pixel changes, a merge of flips (and scales)
        assert defense.eps == 0 and defense.scales == scales and defense.flip
    else:  # the fast budget: one view, T = 5, ε_v = 6 (8 where the name says so)
        assert [type(t).__name__ for t in defense.objective.transforms] == [kind]
        eps = 8.0 if '_eps8_' in name else 6.0
        assert (defense.steps, defense.eps, defense.objective.max_view_area) == (5, eps, 1.0)
        if scales is not None:  # a purifier, then the model's own TTA
            assert type(defense.purifier).__name__ == 'EquivariancePurifier' and defense.tta.scales == scales
            assert defense.tta.flip
        else:
            assert not getattr(defense, 'merges_predictions', False)


def test_shipped_configs_resolve_by_package_name():
    from mmequi.apis.config import config_path, load_component
    assert osp.samefile(config_path('mmequi::demo/fcn_r18-d8_synthetic-cityscapes.py'),
                        osp.join(ROOT, 'configs/demo/fcn_r18-d8_synthetic-cityscapes.py'))
    assert load_component('defense', 'invariance')['type'] == 'InvariancePurifier'


def narrow_to_synthetic_coco(config, path):
    """A child config of ``config`` whose model predicts only the synthetic json's 6 categories."""
    heads = dict(bbox_head=dict(num_classes=len(COCO_CLASSES)))
    if osp.basename(config).startswith('mask-rcnn'):
        heads['mask_head'] = dict(num_classes=len(COCO_CLASSES))
    path.write_text(f"_base_ = [{config!r}]\n"
                    f"test_dataloader = dict(dataset=dict(metainfo=dict(classes={COCO_CLASSES!r})))\n"
                    f"model = dict(roi_head={heads!r})\n")
    return str(path)


@pytest.mark.parametrize('config', DET_CONFIGS, ids=osp.basename)
def test_shipped_det_config_runs(tmp_path, data, config):
    cfg = Config.fromfile(config)
    assert cfg.custom_hooks[0].type == 'RobustTestHook' and cfg.load_from
    name = osp.basename(config)
    options = dict(FAST)
    if 'synthetic' in name:  # demo: the committed checkpoint, its own image size
        checkpoint = osp.join(ROOT, cfg.load_from)
    else:  # official: random weights (every box kept, so the metric has something to score), small images
        options.update({'test_dataloader.dataset.pipeline.1.scale': '(96,64)', 'model.test_cfg.rcnn.score_thr': 0})
    if 'voc0712' in name:
        root = data['voc_det']
    else:
        root = data['coco']
        options['test_evaluator.ann_file'] = root + 'annotations/instances_val2017.json'
        if 'synthetic' not in name:  # the synthetic json lists 6 of COCO's 80 categories: predict only those
            config = narrow_to_synthetic_coco(config, tmp_path / name)
            cfg = Config.fromfile(config)
    if 'synthetic' not in name:
        checkpoint = random_checkpoint(cfg, tmp_path / 'random.pth', options)
    show = tmp_path / 'show'
    metrics, robustness = run(config, checkpoint, tmp_path / 'work', root, options, ['--show-dir', str(show)])
    assert len(list(show.glob('*.png'))) == (1 if 'voc0712' in name else 2)  # one per val image
    task_key = 'pascal_voc/mAP' if 'voc0712' in name else 'coco/bbox_mAP'
    keys = [task_key, 'equivariance/clean', 'equivariance/attacked', 'equivariance/purified']
    if name.startswith('mask-rcnn'):
        keys.append('coco/segm_mAP')
    for key in keys:
        assert key in metrics, (key, metrics)
    assert robustness['settings']['attack']['type'] == 'PGD' and robustness['settings']['feature'] == 'neck.0'

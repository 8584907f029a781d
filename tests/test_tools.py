"""tools/train.py and tools/test.py on the demo configs: a train -> save -> test round trip, and the committed
demo checkpoints evaluated through tools/test.py on freshly generated synthetic data."""
import json
import os.path as osp

import pytest

from mmequi.synthetic import generate_cityscapes, generate_coco, generate_voc
from tools import test as test_tool
from tools import train as train_tool

SEG_CITYSCAPES = 'configs/demo/fcn_r18-d8_synthetic-cityscapes.py'
SEG_VOC = 'configs/demo/fcn_r18-d8_synthetic-voc.py'
DET_COCO = 'configs/demo/faster-rcnn_r18_fpn_synthetic-coco.py'


def _data_options(config, data_root):
    """--cfg-options pointing a demo config at a generated data root."""
    opts = {'train_dataloader.dataset.data_root': data_root, 'val_dataloader.dataset.data_root': data_root,
            'test_dataloader.dataset.data_root': data_root, 'train_dataloader.num_workers': 0,
            'train_dataloader.persistent_workers': False}
    if config == DET_COCO:
        for split in ('val', 'test'):
            opts[f'{split}_evaluator.ann_file'] = osp.join(data_root, 'annotations/instances_val2017.json')
    return opts


def _metrics(work_dir):
    (path, ) = [p for p in __import__('glob').glob(osp.join(work_dir, '*', 'metrics.json'))]
    with open(path) as f:
        return json.load(f)


@pytest.mark.parametrize('config,generate', [(SEG_CITYSCAPES, generate_cityscapes), (DET_COCO, generate_coco)])
def test_train_save_test_round_trip(tmp_path, repo_root, config, generate):
    data_root = str(generate(tmp_path / 'data', num_train=4, num_val=2))
    opts = _data_options(config, data_root)
    opts.update({'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2, 'default_hooks.checkpoint.interval': 2,
                 'train_dataloader.batch_size': 2, 'param_scheduler': []})
    work_dir = str(tmp_path / 'train')
    argv = [osp.join(repo_root, config), '--work-dir', work_dir, '--cfg-options'] + [f'{k}={v}' for k, v in
                                                                                     opts.items()]
    runner = train_tool.main(argv)
    assert runner.iter == 2
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)
    test_dir = str(tmp_path / 'test')
    metrics = test_tool.main([argv[0], ckpt, '--work-dir', test_dir, '--cfg-options'] + argv[4:])
    key = 'mIoU' if config != DET_COCO else 'coco/bbox_mAP'
    assert key in metrics and key in _metrics(test_dir)


# Committed checkpoints evaluated on the first val images of the default generation (per-image seeding makes
# them the same images as in the full split). Floors sit well below the full-split figures in the README: they
# catch a broken loader, pipeline or checkpoint, not a small drift.
@pytest.mark.parametrize('config,generate,key,floor', [
    (SEG_CITYSCAPES, generate_cityscapes, 'mIoU', 45.0),
    (SEG_VOC, generate_voc, 'mIoU', 45.0),
    (DET_COCO, generate_coco, 'coco/bbox_mAP', 0.2),
])
def test_demo_checkpoint_through_test_tool(tmp_path, repo_root, config, generate, key, floor):
    data_root = str(generate(tmp_path / 'data', num_train=1, num_val=12))
    checkpoint = osp.join(repo_root, 'checkpoints', osp.splitext(osp.basename(config))[0] + '.pth')
    work_dir = str(tmp_path / 'test')
    opts = _data_options(config, data_root)
    metrics = test_tool.main([osp.join(repo_root, config), checkpoint, '--work-dir', work_dir,
                              '--show-dir', str(tmp_path / 'show'), '--cfg-options'] +
                             [f'{k}={v}' for k, v in opts.items()])
    assert metrics[key] >= floor, metrics
    assert _metrics(work_dir)[key] == pytest.approx(metrics[key])
    assert list((tmp_path / 'show').rglob('*.png')) or list((tmp_path / 'show').rglob('*.jpg'))


def test_robustness_report_grid_is_resumable(tmp_path, repo_root):
    from tools import robustness_report
    data_root = str(generate_cityscapes(tmp_path / 'data', num_train=1, num_val=1))
    attack = tmp_path / 'pgd_tiny.py'
    attack.write_text("attack = dict(type='PGD', eps=4, step_size=1, steps=1)\n")
    defense = tmp_path / 'equi_tiny.py'
    defense.write_text("defense = dict(type='EquivariancePurifier', num_views=2, steps=1)\n")
    argv = [osp.join(repo_root, SEG_CITYSCAPES), osp.join(repo_root, 'checkpoints/fcn_r18-d8_synthetic-cityscapes.pth'),
            '--work-dir', str(tmp_path / 'report'), '--attacks', str(attack), '--defenses', 'none', str(defense),
            '--sweep-attack', str(attack), '--sweep-defense', str(defense), '--eps', '2', '--num-views', '1',
            '--cfg-options', f'test_dataloader.dataset.data_root={data_root}']
    records = robustness_report.main(argv)
    assert [r['sweep'] for r in records] == ['grid', 'grid', 'eps', 'eps', 'K']
    assert all('mIoU' in r['metrics'] for r in records)
    assert records[3]['settings']['attack'].startswith('PGD(eps=2.0')
    report = tmp_path / 'report'
    assert (report / 'report.md').read_text().count('\n| ') >= 6
    assert (report / 'metric_vs_eps.png').is_file() and (report / 'metric_vs_K.png').is_file()
    with open(report / 'cells.csv') as f:
        assert len(f.read().strip().splitlines()) == 6
    runs = sorted(report.rglob('metrics.json'))
    again = robustness_report.main(argv)  # resumed: every cell is read back, none recomputed
    assert sorted(report.rglob('metrics.json')) == runs
    assert [r['metrics'] for r in again] == [r['metrics'] for r in records]

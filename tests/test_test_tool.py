"""The test tool as mmseg/mmdet users type it: --out, --show, --wait-time, --show-dir under the work dir, --tta,
the per-image results, the codebase's painter on the model's input, and no library noise."""
import glob
import json
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np
import pytest
from conftest import DET_CHECKPOINT, DET_CONFIG, ROOT, SEG_CHECKPOINT, SEG_CONFIG
from mmengine.fileio import load

from testbed import generate_cityscapes, generate_coco
from tools import test as test_tool

ATTACK = ['--attack', 'pgd_linf_eps4_20steps', '--attack-opts', 'steps=2']


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    return str(generate_cityscapes(tmp_path_factory.mktemp('cityscapes'), num_train=1, num_val=2))


def seg_run(tmp_path, data_root, *args, options=()):
    work_dir = tmp_path / 'work'
    test_tool.main([SEG_CONFIG, SEG_CHECKPOINT, '--work-dir', str(work_dir), *args, '--cfg-options',
                    f'test_dataloader.dataset.data_root={data_root}', *options])
    (log_dir, ) = glob.glob(osp.join(str(work_dir), '2*'))
    return work_dir, log_dir


def test_help_lists_the_usual_flags(capsys):
    with pytest.raises(SystemExit):
        test_tool.parse_args(['--help'])
    text = capsys.readouterr().out
    for flag in ('--out', '--show', '--show-dir', '--wait-time', '--tta', '--launcher'):
        assert flag in text
    args = test_tool.parse_args(['config.py', '--show'])  # not an abbreviation of --show-dir
    assert args.show and args.show_dir is None


def test_out_writes_label_pngs_and_per_image_results(tmp_path, cityscapes):
    work_dir, log_dir = seg_run(tmp_path, cityscapes, *ATTACK, '--out', str(tmp_path / 'pred'))
    labels = sorted((tmp_path / 'pred').glob('*.png'))
    assert len(labels) == 2 and mmcv.imread(str(labels[0]), 'unchanged').shape == (128, 256)
    with open(osp.join(log_dir, 'per_image.jsonl')) as f:
        records = [json.loads(line) for line in f]
    assert [r['img_path'].split('/')[0] for r in records] == ['leftImg8bit'] * 2  # relative to the data root
    for record in records:
        assert 0 <= record['metrics']['aAcc'] <= 100 and record['metrics']['class_iou']
        assert set(record['equivariance']) == {'clean', 'attacked'} and record['seconds']['attack'] > 0
    with open(osp.join(log_dir, 'robustness.json')) as f:
        settings = json.load(f)['settings']
    assert settings['attack'] == dict(type='PGD', eps=4, step_size=1, steps=2, norm='linf', random_start=True)


def test_detector_out_is_a_pickle_mmdet_reads(tmp_path):
    data_root = str(generate_coco(tmp_path / 'coco', num_train=1, num_val=2))
    out = tmp_path / 'results.pkl'
    test_tool.main([DET_CONFIG, DET_CHECKPOINT, '--work-dir', str(tmp_path / 'work'), '--out', str(out),
                    '--cfg-options', f'test_dataloader.dataset.data_root={data_root}',
                    f'test_evaluator.ann_file={data_root}/annotations/instances_val2017.json'])
    results = load(str(out))
    assert len(results) == 2 and 'bboxes' in results[0]['pred_instances']
    with pytest.raises(ValueError, match=r'--out for a detector is a \.pkl file'):
        test_tool.main([DET_CONFIG, DET_CHECKPOINT, '--work-dir', str(tmp_path / 'w2'), '--out', 'results.json',
                        '--cfg-options', f'test_dataloader.dataset.data_root={data_root}'])


def test_tta_is_refused_with_an_attack(tmp_path, cityscapes):
    with pytest.raises(ValueError, match='--tta cannot be combined with an attack or defense'):
        seg_run(tmp_path, cityscapes, *ATTACK, '--tta')


def test_show_dir_is_under_the_work_dir_and_the_painter_sees_the_model_input(tmp_path, cityscapes):
    work_dir, log_dir = seg_run(tmp_path, cityscapes, *ATTACK, '--show-dir', 'pictures',
                                options=['default_hooks.visualization.draw=True'])
    assert len(list((work_dir / 'pictures').glob('*.png'))) == 2
    # mmseg's own SegVisualizationHook was pointed at the attacked image, not the clean file
    painted = sorted(glob.glob(osp.join(log_dir, 'model_inputs', '*.png')))[0]
    clean = glob.glob(osp.join(cityscapes, 'leftImg8bit', 'val', '*', osp.basename(painted)))[0]
    difference = np.abs(mmcv.imread(painted).astype(int) - mmcv.imread(clean).astype(int))
    assert 0 < difference.max() <= 4 + 1  # the attack's ε (one more for the PNG round trip)


def test_a_run_prints_no_library_warning(tmp_path, cityscapes):
    result = subprocess.run([sys.executable, osp.join(ROOT, 'tools/test.py'), SEG_CONFIG, SEG_CHECKPOINT,
                             '--work-dir', str(tmp_path), *ATTACK, '--defense', 'equivariance_fast', '--cfg-options',
                             f'test_dataloader.dataset.data_root={cityscapes}'],
                            capture_output=True, text=True, check=True)
    assert 'Warning' not in result.stderr and 'warnings.warn' not in result.stderr, result.stderr
    # mmengine's log warnings too: only those about the run itself (mmequi's own, e.g. too few images for an AUC)
    logged = [line for line in (result.stdout + result.stderr).splitlines() if ' - WARNING - ' in line]
    assert all('equivariance/' in line for line in logged), logged

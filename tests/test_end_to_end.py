"""The robust test run on real (synthetic Cityscapes-format) validation images with the committed demo segmentor:
the attack lowers mIoU and the defense raises it, APGD is at least as strong as PGD, what the wrapper predicts on,
the seeds it draws from, and 2 processes (gloo) equal 1."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, SEG_CHECKPOINT, SEG_CONFIG, seeded
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmequi.attacks import PGD, Attack
from mmequi.defenses import Defense
from mmequi.models import SegRobustModel
from testbed import generate_cityscapes
from tools import test as test_tool

NUM_IMAGES = 4
FAST_DEFENSE = ['--defense', 'equivariance_fast']


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return str(generate_cityscapes(tmp_path_factory.mktemp('cityscapes'), num_train=1, num_val=NUM_IMAGES))


def run(tmp_path, data_root, name, *args, launcher=None, options=()):
    """tools/test.py on the generated images -> (metrics.json, robustness.json or None) of the run."""
    work_dir = str(tmp_path / name)
    argv = [SEG_CONFIG, SEG_CHECKPOINT, '--work-dir', work_dir, *args, '--cfg-options',
            f'test_dataloader.dataset.data_root={data_root}', *options]
    if launcher is None:
        test_tool.main(argv)
    else:  # torchrun: 2 CPU processes over gloo
        env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
        subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port',
                        str(29500 + os.getpid() % 1000), osp.join(ROOT, 'tools/test.py'),
                        *argv, '--launcher', 'pytorch'], check=True, env=env, stdout=subprocess.DEVNULL)
    metrics = glob.glob(osp.join(work_dir, '*', 'metrics.json'))
    robustness = glob.glob(osp.join(work_dir, '*', 'robustness.json'))
    assert len(metrics) == 1 and len(robustness) <= 1, (metrics, robustness)
    with open(metrics[0]) as f:
        result = json.load(f)
    if robustness:
        with open(robustness[0]) as f:
            return result, json.load(f)
    return result, None


def test_attack_lowers_and_defense_raises_miou(tmp_path, data_root):
    attack = ['--attack', 'pgd_linf_eps4_20steps', '--attack-cache', str(tmp_path / 'cache')]
    clean, _ = run(tmp_path, data_root, 'clean')
    attacked, report = run(tmp_path, data_root, 'attacked', *attack)
    defended, _ = run(tmp_path, data_root, 'defended', *attack, *FAST_DEFENSE)
    assert report['images'] == NUM_IMAGES
    # measured on these 4 images: clean 66.59, PGD-20 27.37, PGD-20 + fast preset 50.90
    assert attacked['mIoU'] < clean['mIoU'] - 25
    assert defended['mIoU'] > attacked['mIoU'] + 15


def test_apgd_is_at_least_as_strong_as_pgd_at_equal_steps(tmp_path, data_root):
    pgd, _ = run(tmp_path, data_root, 'pgd', '--attack', 'pgd_linf_eps4_20steps')
    apgd, _ = run(tmp_path, data_root, 'apgd', '--attack', 'apgd_linf_eps4_50steps', '--attack-opts', 'steps=20')
    assert apgd["mIoU"] <= pgd["mIoU"] + 0.5  # measured: APGD-20 20.61, PGD-20 27.37


def test_two_processes_equal_one_and_write_one_report(tmp_path, data_root):
    args = ['--attack', 'pgd_linf_eps4_20steps', '--attack-opts', 'steps=3', '--defense', 'random_noise']
    odd = ['test_dataloader.dataset.indices=3']  # 2 ranks: the sampler repeats the first image on rank 1
    single, single_report = run(tmp_path, data_root, 'single', *args, options=odd)
    double, double_report = run(tmp_path, data_root, 'double', *args, launcher='pytorch', options=odd)
    # task metrics exactly; the equivariance means up to float32 summation order
    assert {k: double[k] for k in ('mIoU', 'aAcc', 'mAcc')} == {k: single[k] for k in ('mIoU', 'aAcc', 'mAcc')}
    assert double == pytest.approx(single, rel=1e-6)
    assert double_report['images'] == single_report['images'] == 3
    assert set(double_report['seconds_per_image']) == {'attack', 'defense'}
    records = [glob.glob(osp.join(tmp_path, name, '*', 'per_image.jsonl')) for name in ('single', 'double')]
    records = [[json.loads(line) for line in open(path)] for (path, ) in records]
    assert [r['img_path'] for r in records[1]] == [r['img_path'] for r in records[0]]  # dataset order, each once
    assert [r['metrics'] for r in records[1]] == [r['metrics'] for r in records[0]]
    # the same images spelled another way (absolute path with a trailing slash): the same draws, the same result
    respelled, _ = run(tmp_path, osp.abspath(data_root) + '/', 'respelled', *args, options=odd)
    assert respelled == single


def test_image_seed_depends_on_the_path_relative_to_the_data_root(demo_segmentor):
    sample = SegDataSample(metainfo=dict(img_path='data/city/leftImg8bit/val/a.png'))
    seeds = {SegRobustModel(demo_segmentor, data_root=root).image_seed(sample, 0)
             for root in ('data/city', './data/city/', osp.abspath('data/city'))}
    moved = SegDataSample(metainfo=dict(img_path='/elsewhere/city/leftImg8bit/val/a.png'))
    assert len(seeds) == 1 and SegRobustModel(demo_segmentor, data_root='/elsewhere/city').image_seed(moved, 0) in seeds


def one_sample(seed=0, size=(32, 64)):
    gen = seeded(seed)
    image = torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_path='a.png', ori_shape=size, img_shape=size))
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, *size), generator=gen))
    return dict(inputs=[image], data_samples=[sample])


class FirstDraw(Attack):
    """An attack that only records the first number of its random stream."""

    def perturb(self, images, objective, generator=None, valid_mask=None, context=None):
        self.draw = torch.rand(1, generator=generator).item()
        return images.clone()


class Blank(Defense):
    """A purifier with an effect nobody can miss: a mid-grey image; records its first random number."""

    def purify(self, images, feature_fn=None, generator=None):
        self.draw = torch.rand(1, generator=generator).item()
        return torch.full_like(images, 128.0)


def test_attack_and_defense_draw_from_different_streams(demo_segmentor):
    wrapper = SegRobustModel(demo_segmentor, attack=FirstDraw(), defense=Blank(), score=False)
    wrapper.test_step(one_sample())
    assert wrapper.attack.draw != wrapper.defense.draw


def test_prediction_is_made_on_the_purified_image(demo_segmentor):
    data = one_sample()
    wrapper = SegRobustModel(demo_segmentor, attack=PGD(eps=8, steps=2), defense=Blank(), score=False,
                             keep_images=True)
    (result, ) = wrapper.test_step(data)
    grey = torch.full((1, 3, 32, 64), 128.0)
    on_grey = wrapper.predict_pixels(grey, data['data_samples'][0]).pred_sem_seg.data
    on_attacked = wrapper.predict_pixels(result.robust_images['attacked'][None].float(),
                                         data['data_samples'][0]).pred_sem_seg.data
    assert torch.equal(result.pred_sem_seg.data, on_grey) and not torch.equal(on_grey, on_attacked)


@pytest.mark.parametrize('attack,defense', [('sea_linf_eps4_100steps', 'none'),
                                            ('sea_bpda_eot1_linf_eps4_25steps', 'random_noise'),
                                            ('bpda_apgd_eot1_linf_eps4_50steps', 'equivariance_fast'),
                                            ('apgd_l2_eps255_50steps', 'none'), ('cospgd_linf_eps4_50steps', 'none')])
def test_shipped_new_attacks_run_through_the_tool(tmp_path, data_root, attack, defense):
    metrics, report = run(tmp_path, data_root, 'run', '--attack', attack, '--attack-opts', 'steps=3',
                          '--defense', defense, options=['test_dataloader.dataset.indices=2'])
    assert report['images'] == 2 and report['settings']['attack']['steps'] == 3 and metrics['mIoU'] < 70

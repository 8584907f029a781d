"""tools/benchmark_defense.py: settings parsing, the side-by-side table (recovered share, speed-up) and the memory
probe of one purifier step."""
import argparse
import csv

import pytest

from tools import benchmark_defense as bench


def test_settings_parse_into_name_and_typed_options():
    assert bench.parse_setting('equivariance') == ('equivariance', {})
    assert bench.parse_setting('equivariance:num_views=1,steps=5,max_view_area=1.0,grad_per_view=False') == (
        'equivariance', dict(num_views=1, steps=5, max_view_area=1.0, grad_per_view=False))
    with pytest.raises(ValueError, match='expected name:key=value'):
        bench.parse_setting('equivariance:steps')


def record(sweep, attack, metric, seconds=None, passes=None):
    return dict(sweep=sweep, attack=attack, defense='x', metrics={'mIoU': metric}, images=4,
                seconds_per_image={'defense': seconds} if seconds else {}, passes_per_image=passes or {},
                peak_memory={'mib': 100.0})


def test_table_gives_recovered_share_and_speedup(tmp_path):
    pgd = 'pgd_linf_eps4_50steps'
    records = [record('baseline', 'none', 70.0), record('baseline', pgd, 20.0),
               record('equivariance', 'none', 68.0, 4.0, dict(forward_backward=266.0, forward=0.0)),
               record('equivariance', pgd, 55.0, 4.0, dict(forward_backward=266.0, forward=0.0)),
               record('fast', 'none', 69.0, 0.5, dict(forward_backward=10.0, forward=0.0)),
               record('fast', pgd, 54.0, 0.5, dict(forward_backward=10.0, forward=0.0))]
    args = argparse.Namespace(work_dir=str(tmp_path), reference='equivariance', config='c.py', checkpoint='c.pth',
                              num_images=4, attack=pgd)
    bench.write_outputs(args, records)
    rows = {r['setting']: r for r in csv.DictReader(open(tmp_path / 'benchmark.csv'))}
    assert float(rows['equivariance']['recovered_share']) == pytest.approx(35 / 50)
    assert float(rows['fast']['recovered_share']) == pytest.approx(34 / 50)
    assert float(rows['fast']['speedup_vs_reference']) == pytest.approx(8.0)
    assert (tmp_path / 'pareto.png').stat().st_size > 0 and 'recovered' in (tmp_path / 'benchmark.md').read_text()


def test_adaptive_attack_through_each_setting_is_its_worst_case_axis(tmp_path):
    """With --adaptive every setting gets a third cell, and the table its result and the share of the transferred
    attack's loss kept under it (relative to the same clean and attacked baselines as the recovered share)."""
    pgd, bpda = 'pgd_linf_eps4_50steps', 'bpda_apgd_eot4_linf_eps4_50steps'
    args = argparse.Namespace(work_dir=str(tmp_path), reference='fast', config='c.py', checkpoint='c.pth',
                              num_images=4, attack=pgd, settings=['fast', 'fast:eps=4'], adaptive=f'{bpda}:eot=2')
    cells = bench.cells_for(args)
    assert [(c['sweep'], c['attack'], c['attack_opts']) for c in cells if c['attack'] == bpda] == [
        ('fast', bpda, dict(eot=2)), ('fast eps=4', bpda, dict(eot=2))]
    passes = dict(forward_backward=10.0, forward=0.0)
    records = [record('baseline', 'none', 70.0), record('baseline', pgd, 20.0),
               record('fast', 'none', 64.0, 0.5, passes), record('fast', pgd, 55.0, 0.5, passes),
               record('fast', bpda, 45.0, 0.5, passes),
               record('fast eps=4', 'none', 69.0, 0.5, passes), record('fast eps=4', pgd, 50.0, 0.5, passes),
               record('fast eps=4', bpda, 30.0, 0.5, passes)]
    bench.write_outputs(args, records)
    rows = {r['setting']: r for r in csv.DictReader(open(tmp_path / 'benchmark.csv'))}
    assert float(rows['fast']['adaptive_defended']) == 45.0
    assert float(rows['fast']['adaptive_kept_share']) == pytest.approx(25 / 50)
    assert float(rows['fast eps=4']['adaptive_kept_share']) == pytest.approx(10 / 50)
    assert float(rows['fast eps=4']['recovered_share']) == pytest.approx(30 / 50)
    assert '| 45.00 | 50.0 % |' in (tmp_path / 'benchmark.md').read_text()


def test_memory_probe_measures_one_step(repo_root):
    from mmequi.apis.memory import memory_probe
    config = f'{repo_root}/configs/demo/fcn_r18-d8_synthetic-cityscapes.py'
    for what in ('largest_view', 'step:1'):
        assert memory_probe(config, 32, 64, what, None, True) >= 0
    with pytest.raises(ValueError, match="expected 'largest_view' or 'step:K'"):
        memory_probe(config, 32, 64, 'steps:1')

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


def test_memory_probe_measures_one_step(repo_root):
    config = f'{repo_root}/configs/demo/fcn_r18-d8_synthetic-cityscapes.py'
    for what in ('largest_view', 'step:1'):
        assert bench.memory_probe(config, 32, 64, what, None, True) >= 0

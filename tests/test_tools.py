"""tools/train.py and tools/test.py on the demo configs: a train -> save -> test round trip, and the committed
demo checkpoints evaluated through tools/test.py on freshly generated synthetic data."""
import json
import os.path as osp
from pathlib import Path

import pytest

from testbed import generate_cityscapes, generate_coco, generate_voc
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
    adaptive = tmp_path / 'aware_tiny.py'
    adaptive.write_text("attack = dict(type='EquivarianceAwarePGD', lam=1.0, eps=4, step_size=1, steps=1)\n")
    defense = tmp_path / 'equi_tiny.py'
    defense.write_text("defense = dict(type='EquivariancePurifier', num_views=2, steps=1)\n")
    argv = [osp.join(repo_root, SEG_CITYSCAPES), osp.join(repo_root, 'checkpoints/fcn_r18-d8_synthetic-cityscapes.pth'),
            '--work-dir', str(tmp_path / 'report'), '--attacks', str(attack), '--defenses', 'none', str(defense),
            '--sweep-attack', str(attack), '--sweep-defense', str(defense), '--eps', '2', '4', '--num-views', '1',
            '--adaptive-attack', str(adaptive), '--lams', '0.5', '--attack-steps', '2',
            '--convergence-attacks', str(attack), str(adaptive),
            '--cfg-options', f'test_dataloader.dataset.data_root={data_root}']
    records = robustness_report.main(argv)
    assert [r['sweep'] for r in records] == ['grid'] * 2 + ['eps'] * 4 + ['attack_steps'] * 3 + ['K', 'lambda']
    assert [(r['attack'], r['defense']) for r in records if r['sweep'] == 'attack_steps'] == [
        (str(attack), 'none'), (str(attack), str(defense)), (str(adaptive), str(defense))]  # adaptive: defended only
    assert all('mIoU' in r['metrics'] for r in records)
    assert records[2]['settings']['attack'] == dict(type='PGD', eps=2.0, step_size=1, steps=1)  # the config used
    assert records[2]['settings']['attack_built'].startswith('PGD(eps=2.0')
    assert records[10]['settings']['attack']['type'] == 'EquivarianceAwarePGD' and records[10]['images'] == 1
    assert records[10]['attack_opts'] == dict(lam=0.5)
    assert records[8]['settings']['attack'] == dict(type='EquivarianceAwarePGD', lam=1.0, eps=4, step_size=1, steps=2)
    report = tmp_path / 'report'
    runs = sorted(report.rglob('metrics.json'))
    assert len(runs) == 9  # ε = 4 is the attack's own ε: those two sweep cells are the grid's runs
    assert records[4]['metrics'] == records[0]['metrics'] and records[5]['metrics'] == records[1]['metrics']
    assert (report / 'report.md').read_text().count('\n| ') >= 9
    # headline: the defense's row; its worst adaptive attack is the steps sweep's run (the λ sweep's are not counted)
    text = (report / 'report.md').read_text()
    assert '## Headline (mIoU)' in text and '| equi_tiny |' in text and '(aware_tiny, 2 steps)' in text
    for plot in ('eps', 'attack_steps', 'K', 'lambda'):
        assert (report / f'metric_vs_{plot}.png').is_file()
    with open(report / 'cells.csv') as f:
        assert len(f.read().strip().splitlines()) == 12
    again = robustness_report.main(argv)  # resumed: every cell is read back, none recomputed
    assert sorted(report.rglob('metrics.json')) == runs
    assert [r['metrics'] for r in again] == [r['metrics'] for r in records]


def test_robustness_report_grid_has_no_adaptive_attack_without_a_defense():
    import argparse
    from tools import robustness_report
    args = argparse.Namespace(attacks=['none', 'pgd_linf_eps4_50steps', 'bpda_eot4_linf_eps4_50steps'],
                              defenses=['none', 'equivariance'], sweep_attack='pgd_linf_eps4_50steps',
                              sweep_defense='equivariance', eps=[], num_views=[], steps=[], lams=[],
                              adaptive_attack='equivariance_aware_pgd_linf_eps4_50steps', num_images=None, skip=[],
                              attack_steps=[], sweep_defenses=[], convergence_attacks=[])
    pairs = [(c['attack'], c['defense']) for c in robustness_report.grid(args)]
    assert pairs == [('none', 'none'), ('none', 'equivariance'), ('pgd_linf_eps4_50steps', 'none'),
                     ('pgd_linf_eps4_50steps', 'equivariance'), ('bpda_eot4_linf_eps4_50steps', 'equivariance')]
    args.skip, args.sweep_attack, args.eps = ['pgd_linf_eps4_50steps:equivariance'], 'bpda_eot4_linf_eps4_50steps', [8]
    pairs = [(c['attack'], c['defense']) for c in robustness_report.grid(args)]
    assert ('pgd_linf_eps4_50steps', 'equivariance') not in pairs  # skipped
    assert pairs[-1] == ('bpda_eot4_linf_eps4_50steps', 'equivariance')  # the adaptive ε sweep: defended cells only
    assert [c['defense'] for c in robustness_report.grid(args) if c['sweep'] == 'eps'] == ['equivariance']
    args.attacks, args.eps = ['sea_bpda_eot1_linf_eps4_25steps', 'sea_linf_eps4_100steps'], []  # adaptive by option
    assert [(c['attack'], c['defense']) for c in robustness_report.grid(args)] == [
        ('sea_bpda_eot1_linf_eps4_25steps', 'equivariance'), ('sea_linf_eps4_100steps', 'none'),
        ('sea_linf_eps4_100steps', 'equivariance')]
    args.defenses, args.attack_steps = ['none', 'equivariance', 'random_noise'], [9]
    args.sweep_defenses = ['random_noise']
    assert [(c['sweep'], c['defense']) for c in robustness_report.grid(args) if c['sweep'] != 'grid'] == [
        ('attack_steps', 'random_noise')]  # the sweeps on the defenses asked for only
    args.convergence_attacks = ['bpda_eot4_linf_eps4_50steps', 'bpda_apgd_eot4_linf_eps4_50steps']
    args.sweep_defenses, args.skip = ['equivariance', 'random_noise'], ['bpda_apgd_eot4_linf_eps4_50steps:equivariance']
    assert [(c['attack'], c['defense'], c['attack_opts']) for c in robustness_report.grid(args)
            if c['sweep'] == 'attack_steps'] == [  # every convergence attack, less the skipped pairs
        ('bpda_eot4_linf_eps4_50steps', 'equivariance', {'steps': 9}),
        ('bpda_eot4_linf_eps4_50steps', 'random_noise', {'steps': 9}),
        ('bpda_apgd_eot4_linf_eps4_50steps', 'random_noise', {'steps': 9})]


def test_robustness_report_refuses_convergence_attacks_without_steps(tmp_path, capsys):
    """Attacks for the convergence sweep but no step counts would silently run nothing: refused, before any cell."""
    from tools import robustness_report
    with pytest.raises(SystemExit):
        robustness_report.main(['config.py', 'model.pth', '--work-dir', str(tmp_path / 'report'),
                                '--convergence-attacks', 'bpda_apgd_eot4_linf_eps4_50steps'])
    assert '--convergence-attacks needs --attack-steps' in capsys.readouterr().err
    assert not (tmp_path / 'report').exists()


def test_robustness_report_shards_equal_the_cell_run_at_once(tmp_path, repo_root):
    """--shard-images: a cell run as shards of 2 images (the last of 1), merged, has the metrics and image count of the
    same cell run at once (per-image randomness follows the image); an interrupted sharded cell resumes from its
    finished shards."""
    from tools import robustness_report
    data_root = str(generate_cityscapes(tmp_path / 'data', num_train=1, num_val=3))
    attack = tmp_path / 'pgd_tiny.py'
    attack.write_text("attack = dict(type='PGD', eps=4, step_size=1, steps=2)\n")
    defense = tmp_path / 'equi_tiny.py'
    defense.write_text("defense = dict(type='EquivariancePurifier', num_views=1, steps=2)\n")
    argv = [osp.join(repo_root, SEG_CITYSCAPES), osp.join(repo_root, 'checkpoints/fcn_r18-d8_synthetic-cityscapes.pth'),
            '--attacks', str(attack), '--defenses', str(defense), '--num-images', '3',
            '--cfg-options', f'test_dataloader.dataset.data_root={data_root}']
    (whole, ) = robustness_report.main(argv + ['--work-dir', str(tmp_path / 'whole')])
    (sharded, ) = robustness_report.main(argv + ['--work-dir', str(tmp_path / 'sharded'), '--shard-images', '2'])
    assert sharded['images'] == whole['images'] == 3 and len(sharded['shards']) == 2
    assert sharded['metrics'] == pytest.approx(whole['metrics'], abs=1e-4)
    lines = [json.loads(line) for line in open(tmp_path / 'sharded' / sharded['per_image'])]
    assert [line['img_path'] for line in lines] == sorted(line['img_path'] for line in lines)
    assert set(sharded['seconds_per_image']) == set(whole['seconds_per_image']) == {'attack', 'defense'}
    assert whole['metrics']['mIoU'] != pytest.approx(  # the images differ: a mean of per-image mIoUs would not do
        sum(line['metrics']['mIoU'] for line in lines) / 3, abs=1e-2)
    runs = sorted((tmp_path / 'sharded').rglob('metrics.json'))
    (cell_json, ) = (tmp_path / 'sharded').rglob('cell.json')
    cell_json.unlink()  # interrupted after its shards: resumed from them, none recomputed
    (again, ) = robustness_report.main(argv + ['--work-dir', str(tmp_path / 'sharded'), '--shard-images', '2'])
    assert sorted((tmp_path / 'sharded').rglob('metrics.json')) == runs and again['metrics'] == sharded['metrics']


def test_merged_metrics_equal_mmseg_and_mmequi_metrics():
    """Sharded cells are merged from per-image records: aAcc, mIoU, mAcc as mmseg's IoUMetric over the same images
    (of different sizes, with ignored pixels and classes absent from some), the equivariance means and AUC as
    EquivarianceMetric (a class only predicted, a class in no image); a detector's mAP is refused."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample

    from mmequi.evaluation import EquivarianceMetric
    from mmequi.evaluation import per_image_metrics
    from mmequi.evaluation.robust_records import metrics_from_records as merged_metrics
    generator = torch.Generator().manual_seed(1)
    iou_metric = IoUMetric(metrics=['mIoU'])
    iou_metric.dataset_meta = dict(classes=[str(c) for c in range(8)])  # class 7: in no image
    equi_metric, lines = EquivarianceMetric(), []
    for i, (h, w, classes) in enumerate([(30, 40, 6), (20, 50, 3), (40, 40, 5)]):  # class 6: only predicted
        label = torch.randint(0, classes, (1, h, w), generator=generator)
        label[:, :3] = 255
        predicted = torch.where(torch.rand(1, h, w, generator=generator) < 0.3 + 0.2 * i, label,
                                torch.randint(0, 7, (1, h, w), generator=generator))
        predicted[predicted == 255] = 0
        sample = SegDataSample()
        sample.pred_sem_seg, sample.gt_sem_seg = PixelData(data=predicted), PixelData(data=label)
        iou_metric.process({}, [sample.to_dict()])
        scores = dict(clean=0.9 - 0.1 * i, attacked=0.5 + 0.2 * i, purified=0.7)
        equi_metric.process({}, [dict(equivariance_scores=scores)])
        lines.append(dict(metrics=per_image_metrics(sample, sample), equivariance=scores))
    expected = {**iou_metric.compute_metrics(iou_metric.results),
                **{f'equivariance/{k}': v for k, v in equi_metric.compute_metrics(equi_metric.results).items()}}
    assert merged_metrics(lines, list(expected), 8) == expected  # exactly: mmseg's float32 sums, its rounding
    with pytest.raises(ValueError, match='cannot merge.*coco/bbox_mAP'):
        merged_metrics(lines, ['coco/bbox_mAP', 'mIoU'], 8)


def test_robustness_report_refuses_shards_it_cannot_merge(tmp_path, repo_root, capsys):
    """Shards without --num-images, or of metrics not merged from per-image records (a detector's per-class AP, as
    its --cfg-options ask): refused before any cell runs."""
    from tools import robustness_report
    refused = ('test_evaluator.classwise=True', 'test_evaluator.metric=segm', 'test_evaluator.metric=[bbox,proposal]',
               'test_evaluator.proposal_nums=[1,10,100]', 'test_evaluator.sort_categories=True')
    for config, options in ((SEG_CITYSCAPES, []),
                            *((DET_COCO, ['--num-images', '4', '--cfg-options', o]) for o in refused)):
        with pytest.raises(SystemExit):
            robustness_report.main([osp.join(repo_root, config), 'model.pth', '--work-dir', str(tmp_path / 'report'),
                                    '--shard-images', '2', *options])
    err = capsys.readouterr().err
    assert 'needs a positive shard size and --num-images' in err
    assert err.count("is neither IoUMetric with iou_metrics=['mIoU'] nor CocoMetric with an ann_file and its defaults") \
        == len(refused)
    assert all(f"'{o.split('.')[1].split('=')[0]}'" in err for o in refused)
    assert not (tmp_path / 'report').exists()


def test_robustness_report_nproc_runs_each_cell_with_torchrun(tmp_path, monkeypatch):
    """--nproc N: every tools/test.py run of the report goes through torchrun with --launcher pytorch."""
    from mmequi.apis import cells
    commands = []
    monkeypatch.setattr(cells, 'run_test', lambda command, in_process=False: commands.append(command) or dict(
        metrics={}, robustness={}, per_image=None, seconds=0.0))
    runner = cells.CellRunner('config.py', 'model.pth', str(tmp_path), nproc=2)
    runner.run_tool(dict(attack='none', defense='equivariance_fast', attack_opts={}, defense_opts={}),
                    str(tmp_path / 'cell'), 4)
    (command, ) = commands
    assert command[:6] == ['python', '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']
    assert command[6:8] == ['-m', 'mmequi.apis.test'] and '--launcher' in command
    assert command[command.index('--launcher') + 1] == 'pytorch'
    assert command[-2:] == ['--cfg-options', 'test_dataloader.dataset.indices=4']


def test_demo_gives_each_task_its_shipped_preset():
    """make demo runs the segmentors with the flip view + their own TTA merge and the detector with the ×2 view at
    ε_v = 8 + the fused boxes of the image and its mirror (not NMS's merge), each built from its shipped config."""
    from argparse import Namespace

    from mmequi.apis.config import load_component
    from mmequi.registry import DEFENSES, build
    from tools import demo
    cells = demo.plan(Namespace(models=None, num_images=None, no_reference=True))
    presets = {}
    for cell in cells:
        if cell[6] != 'none':
            presets.setdefault(cell[0], set()).add(cell[6])
    assert presets == {'Cityscapes-format FCN-R18': {'equivariance_flip_tta'},
                       'VOC-format FCN-R18': {'equivariance_flip_tta'},
                       'COCO-format Faster R-CNN R18': {'equivariance_fast_eps8_flip_wbf'}}
    detector_preset = build(DEFENSES, load_component('defense', demo.DET_DEFENSE), 'defense')
    assert detector_preset.box_merge == 'wbf' and detector_preset.merges_boxes and detector_preset.eps == 8


def _demo_cell(command, in_process=False, cwd=None):
    """A stand-in for one demo cell: an attacked, undefended cell attacks its images (slowly) into the model's attack
    cache when they are not there yet, and fails if another cell is attacking them at the same time; an attacked,
    defended cell fails if the attacks are not there yet."""
    import os
    import time
    start, value = time.time(), lambda flag: command[command.index(flag) + 1]
    cache = value('--attack-cache') if '--attack-cache' in command else None
    if cache and value('--defense') == 'none' and not osp.isdir(cache):
        os.makedirs(cache + '.attacking')  # FileExistsError: two cells attack the same images
        time.sleep(1.0)
        os.makedirs(cache)
    elif cache:
        assert osp.isdir(cache), f'{value("--work-dir")} read its attacks before they were written'
    return dict(metrics={}, robustness={}, seconds=0.0, work_dir=value('--work-dir'), start=start, end=time.time())


def test_demo_runs_cells_side_by_side_after_the_attacks_they_read(tmp_path):
    """make demo's workers: every cell runs once and comes back in the plan's order; cells run side by side (the two
    first attacks overlap in time), and a cell that reads a model's attacked images starts only after the cell that
    attacks them has finished."""
    from argparse import Namespace

    from tools import demo
    args = Namespace(work_dir=str(tmp_path), models=None, num_images=None, no_reference=False)
    commands = [demo.command(args, cell) for cell in demo.plan(args)]
    runs = list(demo.run_cells(commands, workers=2, run=_demo_cell))
    assert [run['work_dir'] for run in runs] == [c[c.index('--work-dir') + 1] for c in commands]
    attacks = sorted((run for run, c in zip(runs, commands)
                      if '--attack-cache' in c and c[c.index('--defense') + 1] == 'none'), key=lambda run: run['start'])
    assert len(attacks) == 4 and attacks[1]['start'] < attacks[0]['end']


def test_demo_report_links_the_robustness_report(tmp_path, repo_root, monkeypatch):
    """The demo's report.md links the committed robustness report (the link must resolve from where it is written)."""
    from tools import demo
    canned = dict(metrics={'mIoU': 50.0, 'aAcc': 90.0, 'equivariance/clean': 30.0},
                  robustness={'seconds_per_image': {}}, per_image=None, seconds=0.0)
    monkeypatch.setattr(demo, 'run_test', lambda command, in_process=False, cwd=None: canned)
    demo.main(['--work-dir', str(tmp_path / 'demo'), '--models', 'cityscapes'])
    text = (tmp_path / 'demo' / 'report.md').read_text()
    (target, ) = [line.split('](')[1].split(')')[0] for line in text.splitlines() if demo.ROBUSTNESS_REPORT in line]
    assert osp.isfile(osp.join(tmp_path, 'demo', target))


def test_rescale_scores_divides_old_sums_by_the_pairs_once(tmp_path):
    """tools/misc/rescale_scores.py: an old cell's scores (sums over the K(K+1)/2 view pairs) become mean cosines,
    per-image records too; a second run (or a newer cell) is left alone."""
    from tools.misc.rescale_scores import rescale
    cells = {'a': dict(defense='equivariance', defense_opts={'num_views': 2}, settings={}),  # 3 pairs
             'b': dict(defense='none', defense_opts={}, settings={}),  # the 8 reference views: 36 pairs
             'c': dict(defense='equivariance_fast', defense_opts={}, settings={'score_scale': 'mean'}),  # new
             'd': dict(defense='equivariance_fast', defense_opts={}, settings={}),  # its config's K = 1: 1 pair
             'e': dict(defense='equivariance', defense_opts={'transforms': [dict(type='HFlip')] * 3},
                       settings={'feature': 'neck.0'})}  # 3 views given: 6 pairs
    for name, record in cells.items():
        (tmp_path / 'cells' / name).mkdir(parents=True)
        (tmp_path / 'cells' / name / 'per_image.jsonl').write_text(
            json.dumps({'equivariance': {'clean': 36.0, 'attacked': 18.0}}) + '\n')
        record.update(metrics={'equivariance/clean': 36.0, 'equivariance/auc_clean_vs_attacked': 0.9, 'mIoU': 50.0},
                      per_image=f'cells/{name}/per_image.jsonl')
        (tmp_path / 'cells' / name / 'cell.json').write_text(json.dumps(record))
    assert rescale(str(tmp_path)) == 4 and rescale(str(tmp_path)) == 0
    expected = {'a': 12.0, 'b': 1.0, 'c': 36.0, 'd': 36.0, 'e': 6.0}
    for name, value in expected.items():
        record = json.loads((tmp_path / 'cells' / name / 'cell.json').read_text())
        assert record['metrics'] == {'equivariance/clean': value, 'equivariance/auc_clean_vs_attacked': 0.9,
                                     'mIoU': 50.0}
        line = json.loads((tmp_path / 'cells' / name / 'per_image.jsonl').read_text())
        assert line['equivariance'] == {'clean': value, 'attacked': value / 2}
    (tmp_path / 'cells' / 'f').mkdir()
    (tmp_path / 'cells' / 'f' / 'cell.json').write_text(json.dumps(dict(
        defense='none', defense_opts={}, settings={'feature': 'neck'}, metrics={'equivariance/clean': 90.0})))
    with pytest.raises(ValueError, match="several levels"):
        rescale(str(tmp_path))


@pytest.mark.parametrize('defense,views,steps', [('equivariance', 8, 20), ('equivariance_fast', 1, 5),
                                                  ('equivariance_flip', 1, 5), ('equivariance_flip_tta', 1, 5)])
def test_report_reads_k_and_t_from_the_purifier(defense, views, steps):
    """The report's K and T columns: the purifier's settings, nested under ``purifier`` in a ``PurifiedTTA`` preset,
    K counted from the listed views where the preset lists them."""
    from mmequi.apis.config import load_component
    from tools.robustness_report import purifier_settings
    settings = purifier_settings(load_component('defense', defense))
    assert (settings['num_views'], settings['steps']) == (views, steps)
    listed = dict(type='EquivariancePurifier', transforms=[dict(type='HFlip')] * 3, num_views=8)  # K: the 3 listed
    assert purifier_settings(listed)['num_views'] == 3


def test_report_worst_case_per_image_follows_sea_rule(tmp_path):
    """Per image the worst attack: two attacks that each keep mIoU 50 on two images, but fail on different images,
    give 0 together (SEA's running-mIoU rule); aAcc: the mean of each image's lowest accuracy."""
    from argparse import Namespace

    from tools.robustness_report import per_image_worst
    per_image = {'x': {'a.png': (10.0, {0: [0, 10]}), 'b.png': (80.0, {1: [10, 10]})},
                 'y': {'a.png': (90.0, {0: [10, 10]}), 'b.png': (20.0, {1: [0, 10]})}}
    records = []
    for attack, images in per_image.items():
        path = tmp_path / f'{attack}.jsonl'
        path.write_text(''.join(json.dumps(dict(img_path=image, metrics=dict(aAcc=acc, class_areas=areas))) + '\n'
                                for image, (acc, areas) in images.items()))
        records.append(dict(sweep='grid', attack=attack, defense='d', per_image=path.name))
    lines = per_image_worst(Namespace(work_dir=str(tmp_path)), records)
    assert lines[2].split(' | ')[1:] == ['2', '2', '45.00 (x)', '**15.00**', '50.00 (x)', '**0.00** |']


def test_report_worst_case_per_image_includes_the_longer_runs_of_the_steps_sweep(tmp_path):
    """An adaptive attack's longer run (the attack-steps sweep) is one more attack against the defense; a longer run
    of a non-adaptive attack is not (its images were not made against the defense)."""
    from argparse import Namespace

    from tools.robustness_report import per_image_worst
    bpda, pgd = 'bpda_eot1_linf_eps4_20steps', 'pgd_linf_eps4_50steps'
    records = []
    for sweep, attack, accuracy in (('grid', bpda, 60.0), ('attack_steps', bpda, 30.0), ('attack_steps', pgd, 10.0),
                                    ('grid', pgd, 70.0)):
        path = tmp_path / f'{sweep}-{attack}.jsonl'
        path.write_text(json.dumps(dict(img_path='a.png', metrics=dict(aAcc=accuracy))) + '\n')
        records.append(dict(sweep=sweep, attack=attack, defense='d', attack_opts=dict(steps=40), per_image=path.name))
    row = per_image_worst(Namespace(work_dir=str(tmp_path)), records)[2].split(' | ')
    assert row[1:5] == ['1', '3', f'30.00 ({bpda}, 40 steps)', '**30.00**']


def test_report_convergence_table_judges_each_doubling_against_the_noise_of_the_images(tmp_path):
    """The attack-steps sweep's table: the grid's run at the attack's own steps, then each longer run with its change
    and a bootstrap interval over images; "falls" only when every image says so, "flat" for the same predictions."""
    from argparse import Namespace

    from tools.robustness_report import convergence_table
    bpda = 'bpda_eot1_linf_eps4_20steps'  # its own steps: 20
    records = []
    noise = [2, -2, 2, -2, 2, -2, 2, -2, 2, -2, -2, -2]  # some images rise, more fall: a change within noise
    for sweep, steps, hits in (('grid', None, [8] * 12), ('attack_steps', 40, [5] * 12),
                               ('attack_steps', 80, [5] * 12), ('attack_steps', 160, [5 + n for n in noise])):
        path = tmp_path / f'{steps}.jsonl'
        path.write_text(''.join(json.dumps(dict(img_path=f'{i}.png', metrics=dict(
            aAcc=0.0, class_areas={i % 3: [hit + i % 2, 10, 10]}))) + '\n' for i, hit in enumerate(hits)))
        records.append(dict(sweep=sweep, attack=bpda, defense='d', attack_opts={} if steps is None else dict(steps=steps),
                            per_image=path.name))
    rows = [line.split(' | ') for line in convergence_table(Namespace(work_dir=str(tmp_path)), records)[2:]]
    assert [row[3] for row in rows] == ['20', '40', '80', '160'] and rows[0][4] == '85.00'
    assert rows[1][4:] == ['55.00', '-30.00', '[-30.00, -30.00]', 'falls |']
    assert rows[2][5:] == ['+0.00', '[+0.00, +0.00]', 'flat within noise |']
    low, high = (float(v) for v in rows[3][6].strip('[]').split(', '))
    assert float(rows[3][5]) < 0 and low < 0 < high and rows[3][7] == 'flat within noise |'


def test_report_convergence_table_gives_a_detectors_change_without_an_interval(tmp_path):
    """Detector cells recorded without their boxes (before 2026-12-07): each step count's mAP and its change, and a
    note that no interval was computed instead of a verdict (with boxes: tests/test_box_map.py)."""
    from argparse import Namespace

    from tools.robustness_report import convergence_table
    bpda = 'bpda_eot1_linf_eps4_20steps'
    records = []
    for sweep, steps, value in (('grid', None, 0.687), ('attack_steps', 40, 0.674), ('attack_steps', 80, 0.652)):
        path = tmp_path / f'{steps}.jsonl'
        path.write_text(json.dumps(dict(img_path='0.jpg', metrics=dict(detections=3, gt_boxes=2))) + '\n')
        records.append(dict(sweep=sweep, attack=bpda, defense='d', attack_opts={} if steps is None else dict(steps=steps),
                            per_image=path.name, images=20, metrics={'coco/bbox_mAP': value}))
    lines = convergence_table(Namespace(work_dir=str(tmp_path)), records)
    assert lines[0].split(' | ')[4] == 'coco/bbox_mAP'
    rows = [line.split(' | ') for line in lines[2:]]
    assert [row[2:5] for row in rows] == [['20', '20', '0.687'], ['20', '40', '0.674'], ['20', '80', '0.652']]
    assert rows[2][5:] == ['-0.022', '–', 'no interval: cells without per-image boxes |']


def test_headline_worst_adaptive_includes_the_longer_runs_of_the_steps_sweep():
    from tools.robustness_report import headline

    def record(sweep, attack, defense, value, **attack_opts):
        return dict(sweep=sweep, attack=attack, defense=defense, attack_opts=attack_opts, metrics={'mIoU': value})
    bpda = 'bpda_eot1_linf_eps4_20steps'
    records = [record('grid', 'none', 'none', 70.0), record('grid', 'none', 'random_noise', 69.0),
               record('grid', bpda, 'random_noise', 50.0),
               record('attack_steps', bpda, 'random_noise', 40.0, steps=40)]
    row = headline(records, 'mIoU')[2].split(' | ')
    assert row[-2:] == [f'40.00 ({bpda}, 40 steps)', '40.00 |']


def test_headline_worst_adaptive_includes_the_cells_of_the_lambda_sweep():
    """An equivariance-aware attack at another λ is one more adaptive attack: against a gated defense λ = 100 is
    what pushes the score past the gate, so leaving the λ sweep out of the worst case hid the strongest attack."""
    from tools.robustness_report import headline

    def record(sweep, attack, defense, value, **attack_opts):
        return dict(sweep=sweep, attack=attack, defense=defense, attack_opts=attack_opts, metrics={'mIoU': value})
    ea = 'equivariance_aware_pgd_linf_eps4_50steps'
    records = [record('grid', 'none', 'none', 70.0), record('grid', 'none', 'gated', 69.0),
               record('grid', ea, 'gated', 60.0), record('lambda', ea, 'gated', 36.0, lam=100.0),
               record('lambda', ea, 'gated', 45.0)]  # the attack's own λ, stored without options
    row = headline(records, 'mIoU')[2].split(' | ')
    assert row[-2:] == [f'36.00 ({ea}, λ = 100)', '36.00 |']


def test_headline_gives_a_detectors_map_to_three_decimals():
    """mAP lies in [0, 1]: two decimals would hide the 0.022 one doubling of the steps takes (0.636 -> 0.614)."""
    from tools.robustness_report import headline
    bpda = 'bpda_eot1_linf_eps4_20steps'
    records = [dict(sweep=s, attack=a, defense=d, attack_opts=o, metrics={'coco/bbox_mAP': v}) for s, a, d, o, v in (
        ('grid', 'none', 'none', {}, 0.844), ('grid', 'none', 'd', {}, 0.818), ('grid', bpda, 'd', {}, 0.636),
        ('attack_steps', bpda, 'd', dict(steps=40), 0.614))]
    row = headline(records, 'coco/bbox_mAP')[2].split(' | ')
    assert row[1:3] == ['0.844', '0.818'] and row[-2:] == [f'0.614 ({bpda}, 40 steps)', '0.614 |']


def test_report_refuses_cells_of_the_old_score_scale(tmp_path):
    """A finished cell whose scores are the old sums over view pairs (no settings.score_scale) is refused before any
    cell runs, naming the one-off conversion; the report does not convert it on every start."""
    from tools import robustness_report
    cell = tmp_path / 'report' / 'cells' / 'old'
    cell.mkdir(parents=True)
    record = dict(attack='none', defense='equivariance', attack_opts={}, defense_opts={}, settings={},
                  metrics={'mIoU': 50.0, 'equivariance/clean': 36.0})
    (cell / 'cell.json').write_text(json.dumps(record))
    with pytest.raises(SystemExit, match='tools/misc/rescale_scores.py'):
        robustness_report.main(['config.py', 'model.pth', '--work-dir', str(tmp_path / 'report')])
    assert json.loads((cell / 'cell.json').read_text()) == record  # untouched
    from mmequi.apis.cells import old_score_scale
    assert old_score_scale([record]) and not old_score_scale([dict(record, settings=dict(score_scale='mean'))])
    assert not old_score_scale([dict(record, metrics={'mIoU': 50.0})])  # no score, nothing to mix


COMMITTED_REPORTS = sorted(p.parent.name for p in Path(__file__).parent.parent.glob('docs/robustness/*/cells.json'))


@pytest.mark.parametrize('part', COMMITTED_REPORTS)
def test_committed_reports_regenerate_from_their_cells(tmp_path, repo_root, part):
    """Every committed report (docs/robustness/<part>) renders again from its cells and per-image records to the
    same report.md and cells.csv, byte for byte: the tables, the worst case per image, the convergence intervals."""
    import shutil

    from tools import robustness_report
    source = Path(repo_root) / 'docs' / 'robustness' / part
    work_dir = tmp_path / part
    shutil.copytree(source, work_dir, ignore=shutil.ignore_patterns('*.png', 'report.md', 'cells.csv'))
    records = json.loads((source / 'cells.json').read_text())
    command = records[0]['command'].split(' && ')[0].split()
    tool = command.index('tools/test.py' if 'tools/test.py' in command else 'mmequi.apis.test')
    config, checkpoint = command[tool + 1:tool + 3]
    argv = [config, checkpoint, '--work-dir', str(work_dir), '--render']
    if records[0].get('num_images'):
        argv += ['--num-images', str(records[0]['num_images'])]
    if any('coco/bbox_mAP' in r.get('metrics', {}) for r in records):
        # A detector's per-image boxes are scored against the annotation file of the test bed they ran on (`make
        # data`, seed 0): written here afresh, so the check needs no data directory and proves it is deterministic.
        from testbed import generate_coco
        truth = generate_coco(tmp_path / 'coco') / 'annotations' / 'instances_val2017.json'
        argv += ['--cfg-options', f'test_evaluator.ann_file={truth}']
    robustness_report.main(argv)
    assert (work_dir / 'report.md').read_text() == (source / 'report.md').read_text()
    assert (work_dir / 'cells.csv').read_text() == (source / 'cells.csv').read_text()


def test_publish_cells_round_trip_resumes_the_same_cells(tmp_path):
    """tools/misc/publish_cells.py: a work dir's cells published (records with their per-image rows inline) and
    restored into a fresh work dir are the same finished cells, per-image records included; a cell the work dir
    already has is kept."""
    from tools.misc.publish_cells import publish, restore
    work, docs, again = tmp_path / 'work', tmp_path / 'docs', tmp_path / 'again'
    rows = [{'img_path': f'a/{i}.png', 'metrics': {'mIoU': float(i)}} for i in range(3)]
    for name, value in (('none__none__1', 70.0), ('pgd__equivariance__2', 60.0)):
        (work / 'cells' / name / 'run').mkdir(parents=True)
        (work / 'cells' / name / 'run' / 'per_image.jsonl').write_text(
            ''.join(json.dumps(dict(r, cell=name)) + '\n' for r in rows))
        (work / 'cells' / name / 'cell.json').write_text(json.dumps(
            {'metrics': {'mIoU': value}, 'per_image': f'cells/{name}/run/per_image.jsonl'}))
    (work / 'benchmark.md').write_text('table')
    publish(str(work), str(docs))
    assert (docs / 'benchmark.md').read_text() == 'table'
    (again / 'cells' / 'none__none__1').mkdir(parents=True)
    (again / 'cells' / 'none__none__1' / 'cell.json').write_text(json.dumps({'metrics': {'mIoU': 1.0}}))
    restore(str(again), str(docs))
    kept = json.loads((again / 'cells' / 'none__none__1' / 'cell.json').read_text())
    assert kept == {'metrics': {'mIoU': 1.0}}
    name = 'pgd__equivariance__2'
    assert json.loads((again / 'cells' / name / 'cell.json').read_text()) == json.loads(
        (work / 'cells' / name / 'cell.json').read_text())
    assert (again / 'cells' / name / 'run' / 'per_image.jsonl').read_text() == (
        work / 'cells' / name / 'run' / 'per_image.jsonl').read_text()


def test_publish_cells_restores_a_published_report_part(tmp_path):
    """--restore also reads a robustness report part as `make headline` publishes it (cells.json beside the per-image
    files it names): each record becomes a finished cell again, under the name in its per-image path."""
    from tools.misc.publish_cells import restore
    part, work = tmp_path / 'part', tmp_path / 'work'
    records = [{'attack': a, 'metrics': {'mIoU': m}, 'per_image': f'cells/{a}__none__{i}/run/per_image.jsonl'}
               for i, (a, m) in enumerate((('none', 70.0), ('pgd', 20.0)))]
    for i, record in enumerate(records):
        path = part / record['per_image']
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({'img_path': 'a.png', 'metrics': {'mIoU': float(i)}}) + '\n')
    (part / 'cells.json').write_text(json.dumps(records))
    restore(str(work), str(part))
    for record in records:
        name = record['per_image'].split('/')[1]
        assert json.loads((work / 'cells' / name / 'cell.json').read_text()) == record
        assert (work / record['per_image']).read_text() == (part / record['per_image']).read_text()

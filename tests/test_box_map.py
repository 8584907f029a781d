"""A detector's bbox mAP from per-image records (``mmequi/evaluation/box_map.py``): the figure mmdet's CocoMetric gives
the same boxes, for the run's images and for a bootstrap draw with an image drawn twice; and the report's steps sweep
judges a detector's change against a bootstrap interval over images, as it does a segmentor's."""
import json
from argparse import Namespace

import pytest
import torch
from conftest import DET_CHECKPOINT, DET_CONFIG

CLASSES = ('person', 'car', 'stop sign', 'dog', 'bottle', 'clock')  # the demo detector's, in label order
TRUTH = {1: [(0, (10.5, 10, 40, 50.25)), (1, (60, 20, 90, 40))],  # img_id: [(label, (x1, y1, x2, y2))]
         2: [(0, (5, 5, 25, 45)), (2, (50, 50, 95, 90)), (1, (30, 60, 45, 80))],
         3: [(3, (20, 20, 70, 70)), (0, (75, 5, 99, 40))],
         4: [],  # no object: every box is a false positive
         5: [(1, (10, 10, 60, 60))]}  # the detector finds nothing
CROWD = {(3, 2)}  # (img_id, object number): a crowd region, whose boxes are ignored


def annotation_file(path, truth):
    """A COCO annotation file of 100×100 images; category ids are not the labels (1, 3, 5, ...), as in COCO."""
    images = [dict(id=i, file_name=f'{i}.jpg', width=100, height=100) for i in truth]
    objects = [dict(id=10 * i + k, image_id=i, category_id=2 * label + 1, bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=float((x2 - x1) * (y2 - y1)), iscrowd=int((i % 10, k) in CROWD))
               for i, boxes in truth.items() for k, (label, (x1, y1, x2, y2)) in enumerate(boxes, start=1)]
    categories = [dict(id=2 * c + 1, name=name) for c, name in enumerate(CLASSES)]
    path.write_text(json.dumps(dict(images=images, annotations=objects, categories=categories)))
    return str(path)


def predictions(img_id, shift):
    """A detector's data sample for image ``img_id``: each object found ``shift`` + 0.37 pixels off, with a false
    positive and a wrong label of lower scores (so that the mAP is neither 0 nor 1 and differs per image); image 5:
    no box. Scores differ across images (pycocotools breaks ties by image order, which a draw changes) and are not
    round numbers: float32 values, as a detector gives them."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    objects = TRUTH[img_id % 10]
    found = [(label, [v + shift * (1 + img_id % 2) + 0.37 for v in box]) for label, box in objects]
    found += [(4, [0, 0, 30.3, 30])] + [((label + 1) % 6, box) for label, box in objects[:1]]
    found = found if img_id % 10 != 5 else []
    sample = DetDataSample(metainfo=dict(img_id=img_id, ori_shape=(100, 100), img_shape=(100, 100)))
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([box for _, box in found], dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor([0.9 - 0.1 * k - 0.013 * (img_id % 10) + 1e-4 / 3 for k in range(len(found))]),
        labels=torch.tensor([label for label, _ in found], dtype=torch.long))
    return sample


def coco_metric(ann_file, samples):
    """mmdet's CocoMetric of ``samples`` on ``ann_file``, named as the evaluator names it."""
    from mmdet.evaluation import CocoMetric
    metric = CocoMetric(ann_file=ann_file, metric='bbox')
    metric.dataset_meta, metric.img_ids = dict(classes=CLASSES), [s.img_id for s in samples]  # as subset.py sets it
    metric.process({}, [s.to_dict() for s in samples])
    return {f'coco/{k}': v for k, v in metric.compute_metrics(metric.results).items()}


def records(samples):
    from mmequi.evaluation import per_image_metrics
    return {f'{s.img_id}.jpg': json.loads(json.dumps(per_image_metrics(s, s))) for s in samples}  # as written


def test_records_map_equals_coco_metric_on_the_run_and_on_a_draw_with_a_repeat(tmp_path):
    """Every bbox figure exactly as CocoMetric's (a crowd region, an image without objects, one without boxes), on
    the run's images and on a draw with image 2 twice (= a dataset with image 2 written twice)."""
    from mmequi.evaluation.box_map import RecordsBoxMAP
    scorer = RecordsBoxMAP(annotation_file(tmp_path / 'truth.json', TRUTH), CLASSES)
    samples = [predictions(i, shift=3) for i in TRUTH]
    kept = records(samples)
    assert kept['2.jpg']['img_id'] == 2 and len(kept['2.jpg']['bboxes']) == 5 and kept['5.jpg']['bboxes'] == []
    run = scorer.metrics(kept, sorted(kept))
    assert 0.2 < run['coco/bbox_mAP'] < 0.9
    assert run == coco_metric(str(tmp_path / 'truth.json'), samples)
    twice = {**TRUTH, 12: TRUTH[2]}
    again = predictions(12, shift=3)  # image 2's objects and boxes under another id
    drawn = scorer.metrics(kept, ['1.jpg', '2.jpg', '3.jpg', '4.jpg', '5.jpg', '2.jpg'])
    assert abs(drawn['coco/bbox_mAP'] - run['coco/bbox_mAP']) > 0.01  # the repeat counts
    assert drawn == coco_metric(annotation_file(tmp_path / 'twice.json', twice), samples + [again])
    assert scorer(kept, sorted(kept)) == pytest.approx(run['coco/bbox_mAP'], abs=5e-4)  # unrounded


def test_report_convergence_table_gives_a_detectors_change_a_bootstrap_interval(tmp_path):
    """Boxes that move further off at 100 steps on every image: the change falls with its whole interval; the same
    boxes again: an interval of zero width. A cell run on more images than the others shows its mAP on theirs."""
    from tools.robustness_report import convergence_table
    ann_file = annotation_file(tmp_path / 'truth.json', {**TRUTH, 11: TRUTH[1]})
    bpda = 'bpda_apgd_eot4_linf_eps4_50steps'
    cells = []
    for sweep, steps, shift, ids in (('grid', None, 1, list(TRUTH)), ('attack_steps', 100, 6, list(TRUTH)),
                                     ('attack_steps', 200, 6, [*TRUTH, 11])):
        samples = [predictions(i, 0 if i == 11 else shift) for i in ids]  # image 11: found
        path = tmp_path / f'{steps}.jsonl'
        path.write_text(''.join(json.dumps(dict(img_path=k, metrics=v)) + '\n' for k, v in records(samples).items()))
        cells.append(dict(sweep=sweep, attack=bpda, defense='d', attack_opts={} if steps is None else dict(steps=steps),
                          per_image=path.name, images=len(ids), metrics=coco_metric(ann_file, samples)))
    args = Namespace(work_dir=str(tmp_path), config=DET_CONFIG, cfg_options=[f'test_evaluator.ann_file={ann_file}'])
    rows = [line.split(' | ') for line in convergence_table(args, cells, resamples=200)[2:]]
    assert [row[2:4] for row in rows] == [['5', '50'], ['5', '100'], ['5', '200']]
    assert [float(row[4]) for row in rows[:2]] == [c['metrics']['coco/bbox_mAP'] for c in cells[:2]]  # the cells' own
    assert float(rows[0][4]) > float(rows[1][4]) + 0.05
    low, high = (float(v) for v in rows[1][6].strip('[]').split(', '))
    assert high < 0 and rows[1][7] == 'falls |'
    assert cells[2]['metrics']['coco/bbox_mAP'] > cells[1]['metrics']['coco/bbox_mAP'] + 0.05  # image 11 there...
    assert rows[2][4] == rows[1][4] and abs(float(rows[2][5])) < 5e-4  # ...not on the 5 images they share
    assert rows[2][6:] == ['[+0.000, +0.000]', 'flat within noise |']


def test_detector_shards_equal_the_cell_run_at_once(tmp_path):
    """--shard-images on a detector: a cell run as shards of 2 images (the last of 1), merged from the records'
    boxes, has the bbox figures of the same cell run at once, which are not the mean of the shards' mAPs."""
    from testbed import generate_coco
    from tools import robustness_report
    data_root = generate_coco(tmp_path / 'data', num_train=1, num_val=3)
    attack = tmp_path / 'pgd_tiny.py'
    attack.write_text("attack = dict(type='PGD', eps=4, step_size=2, steps=2)\n")
    defense = tmp_path / 'equi_tiny.py'
    defense.write_text("defense = dict(type='EquivariancePurifier', num_views=1, steps=2)\n")
    argv = [DET_CONFIG, DET_CHECKPOINT,
            '--attacks', str(attack), '--defenses', str(defense), '--num-images', '3', '--cfg-options',
            f'test_dataloader.dataset.data_root={data_root}',
            f'test_evaluator.ann_file={data_root}/annotations/instances_val2017.json']
    (whole, ) = robustness_report.main(argv + ['--work-dir', str(tmp_path / 'whole')])
    (sharded, ) = robustness_report.main(argv + ['--work-dir', str(tmp_path / 'sharded'), '--shard-images', '2'])
    assert sharded['images'] == whole['images'] == 3 and len(sharded['shards']) == 2
    boxes = sorted(k for k in whole['metrics'] if k.startswith('coco/'))
    assert len(boxes) == 6 and {k: sharded['metrics'][k] for k in boxes} == {k: whole['metrics'][k] for k in boxes}
    assert sharded['metrics'] == pytest.approx(whole['metrics'], abs=1e-4)  # the equivariance scores too
    parts = [json.load(open(p))['metrics']['coco/bbox_mAP'] for p in sorted((tmp_path / 'sharded').rglob('shard.json'))]
    assert whole['metrics']['coco/bbox_mAP'] != pytest.approx(sum(parts) / len(parts), abs=5e-3)  # 0.759; 0.764, 0.775


def test_detector_shards_merge_when_the_first_found_nothing(tmp_path):
    """A shard whose images have no box reports no mAP (CocoMetric stops on empty results): the merged cell still
    has every bbox figure of the run, from all shards' boxes."""
    from mmequi.apis.cells import CellRunner
    ann_file = annotation_file(tmp_path / 'truth.json', TRUTH)
    runner = CellRunner(DET_CONFIG, DET_CHECKPOINT, str(tmp_path), [f'test_evaluator.ann_file={ann_file}'],
                        shard_images=2)
    samples = [predictions(i, shift=2) for i in (5, 1, 2, 3, 4)]
    parts = []
    for shard, (first, last) in enumerate(((0, 1), (1, 5))):
        path = tmp_path / f'shard{shard}.jsonl'
        path.write_text(''.join(json.dumps(dict(img_path=k, metrics=v, equivariance=dict(clean=0.5))) + '\n'
                                for k, v in records(samples[first:last]).items()))
        shown = coco_metric(ann_file, samples[first:last]) if shard else {}  # image 5 alone: no box, no mAP
        parts.append(dict(metrics={**shown, 'equivariance/clean': 0.5}, settings={}, per_image=path.name,
                          peak_memory={}, wall_seconds=1.0, command=f'shard {shard}'))
    (tmp_path / 'cell').mkdir()
    merged = runner.merge(str(tmp_path / 'cell'), parts)
    assert merged['images'] == 5
    assert merged['metrics'] == {**coco_metric(ann_file, samples), 'equivariance/clean': 0.5}

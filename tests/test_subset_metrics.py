"""A COCO subset run scores only the images it evaluated: its mAP equals the mAP of the same images written as their
own annotation file (issue: CocoMetric scored the first images' detections against every image's objects)."""
import json

import pytest
from conftest import DET_CHECKPOINT, DET_CONFIG

from tools import test as test_tool


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    from testbed import generate_coco
    return generate_coco(tmp_path_factory.mktemp('coco_subset'), num_train=1, num_val=6)


def run(tmp_path, data_root, ann_file, extra=()):
    options = [f'test_dataloader.dataset.data_root={data_root}', f'test_dataloader.dataset.ann_file={ann_file}',
               f'test_evaluator.ann_file={data_root}/{ann_file}', *extra]
    return test_tool.main([DET_CONFIG, DET_CHECKPOINT, '--work-dir', str(tmp_path), '--cfg-options', *options])


def test_subset_map_equals_the_map_of_those_images_alone(tmp_path, coco):
    full = json.load(open(coco / 'annotations' / 'instances_val2017.json'))
    first = sorted(full['images'], key=lambda i: i['id'])[:3]
    ids = {image['id'] for image in first}
    alone = dict(full, images=first, annotations=[a for a in full['annotations'] if a['image_id'] in ids])
    (coco / 'annotations' / 'first3.json').write_text(json.dumps(alone))
    subset = run(tmp_path / 'subset', coco, 'annotations/instances_val2017.json',
                 ['test_dataloader.dataset.indices=3'])
    own = run(tmp_path / 'own', coco, 'annotations/first3.json')
    everything = run(tmp_path / 'all', coco, 'annotations/instances_val2017.json')
    assert subset['coco/bbox_mAP'] == pytest.approx(own['coco/bbox_mAP'], abs=1e-3)
    assert subset['coco/bbox_mAP'] > 0.5 * everything['coco/bbox_mAP']  # same order of magnitude as the full split

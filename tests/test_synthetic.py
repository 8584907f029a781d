"""The synthetic Cityscapes / VOC / COCO generators: exact file layout, determinism, idempotence,
argument checks, class coverage, VOC's boxes against its label maps, and that the unmodified
mmseg / mmdet datasets read them."""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import mmdet.datasets  # noqa: F401  (registers mmdet datasets and transforms)
import mmseg.datasets  # noqa: F401  (registers mmseg datasets and transforms)
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from PIL import Image
from pycocotools import mask as mask_utils

from testbed import (CITYSCAPES_CLASSES, COCO_CLASSES, GENERATORS, VOC_CLASSES,
                     generate_cityscapes, generate_coco, generate_voc)
from testbed import MIN_PIXELS, voc_box, voc_palette
from testbed import cli as generate_data

SMALL = dict(num_train=4, num_val=2)


def _files(root):
    """Relative path -> bytes of every generated file (the marker included)."""
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def _voc_objects(xml_path):
    """[(class name, [xmin, ymin, xmax, ymax] 1-based, truncated), ...] of one VOC annotation."""
    objects = []
    for obj in ET.parse(xml_path).getroot().findall('object'):
        box = [int(obj.find(f'bndbox/{k}').text) for k in ('xmin', 'ymin', 'xmax', 'ymax')]
        objects.append((obj.find('name').text, box, int(obj.find('truncated').text)))
    return objects


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    """One small generation of each dataset, shared by the read-only tests."""
    base = tmp_path_factory.mktemp('small')
    return {name: gen(base / name, **SMALL) for name, gen in GENERATORS.items()}


# ------------------------------------------------------------------------------ layout
def test_class_tuples_match_the_datasets():
    assert CITYSCAPES_CLASSES == mmseg.datasets.CityscapesDataset.METAINFO['classes']
    assert VOC_CLASSES == mmseg.datasets.PascalVOCDataset.METAINFO['classes']
    assert set(COCO_CLASSES) <= set(mmdet.datasets.CocoDataset.METAINFO['classes'])
    assert set(GENERATORS) == {'cityscapes', 'voc', 'coco'}


def test_cityscapes_file_names(small):
    files = set(_files(small['cityscapes']))
    stems = {'train': ['aachen/aachen_000000_000019', 'bochum/bochum_000000_000019',
                       'bremen/bremen_000000_000019', 'aachen/aachen_000001_000019'],
             'val': ['frankfurt/frankfurt_000000_000019', 'lindau/lindau_000000_000019']}
    expected = {'.complete.json'}
    for split, names in stems.items():
        for stem in names:
            expected.add(f'leftImg8bit/{split}/{stem}_leftImg8bit.png')
            expected.add(f'gtFine/{split}/{stem}_gtFine_labelTrainIds.png')
    assert files == expected
    gt = Image.open(small['cityscapes'] / 'gtFine/val/lindau/lindau_000000_000019_gtFine_labelTrainIds.png')
    img = Image.open(small['cityscapes'] / 'leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png')
    assert (gt.mode, gt.size, img.mode, img.size) == ('L', (256, 128), 'RGB', (256, 128))


def test_voc_file_names_and_palette(small):
    root = small['voc']
    train, val = ['2012_000000', '2012_000001', '2012_000002', '2012_000003'], ['2012_500000', '2012_500001']
    assert (root / 'ImageSets/Segmentation/train.txt').read_text().split() == train
    assert (root / 'ImageSets/Segmentation/val.txt').read_text().split() == val
    assert (root / 'ImageSets/Segmentation/trainval.txt').read_text().split() == train + val
    assert (root / 'ImageSets/Main/train.txt').read_text().split() == train
    assert (root / 'ImageSets/Main/val.txt').read_text().split() == val
    assert (root / 'ImageSets/Main/test.txt').read_text().split() == val  # mmdet tests on test.txt
    assert sorted(p.name for p in (root / 'ImageSets/Main').iterdir()) == ['test.txt', 'train.txt', 'val.txt']
    assert sorted(p.stem for p in (root / 'Annotations').iterdir()) == train + val
    for name in train + val:
        assert Image.open(root / 'JPEGImages' / f'{name}.jpg').format == 'JPEG'
        seg = Image.open(root / 'SegmentationClass' / f'{name}.png')
        assert seg.mode == 'P'
        pal = np.array(seg.getpalette()[:256 * 3], np.uint8).reshape(-1, 3)
        assert (pal[:21] == mmseg.datasets.PascalVOCDataset.METAINFO['palette']).all()
        assert tuple(pal[255]) == (224, 224, 192)
    assert voc_palette()[15].tolist() == [192, 128, 128]  # person, the classic check


def test_voc_objects_have_void_borders(small):
    seg = np.array(Image.open(small['voc'] / 'SegmentationClass/2012_500000.png'))
    objects = (seg > 0) & (seg < 255)
    assert objects.any() and (seg == 255).any()
    # every object pixel next to background is void-separated: no object pixel touches background
    shifted = [np.roll(seg, s, axis) for s in (1, -1) for axis in (0, 1)]
    inner = objects[1:-1, 1:-1]
    for nb in shifted:
        assert not (inner & (nb[1:-1, 1:-1] == 0)).any()


def test_voc_box_is_one_based_and_inclusive():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:8] = True  # rows 2-4, columns 3-7 (0-based)
    assert voc_box(mask) == (4, 3, 8, 5)
    corners = np.zeros((10, 12), bool)
    corners[0, 0] = corners[-1, -1] = True
    assert voc_box(corners) == (1, 1, 12, 10)  # the whole frame, as real VOC writes it


def test_voc_detection_annotations_match_the_labels(small):
    root = small['voc']
    num_objects = 0
    for xml_path in sorted((root / 'Annotations').glob('*.xml')):
        ann = ET.parse(xml_path).getroot()
        assert ann.tag == 'annotation' and ann.find('filename').text == f'{xml_path.stem}.jpg'
        assert [int(ann.find(f'size/{k}').text) for k in ('width', 'height', 'depth')] == [160, 160, 3]
        for obj in ann.findall('object'):
            assert obj.find('pose').text == 'Unspecified' and obj.find('difficult').text == '0'
        seg = np.array(Image.open(root / 'SegmentationClass' / f'{xml_path.stem}.png'))
        objects = _voc_objects(xml_path)
        assert objects  # the image's own class is big enough to keep its box
        num_objects += len(objects)
        covered = np.zeros((len(VOC_CLASSES), 160, 160), bool)
        for name, (x0, y0, x1, y1), truncated in objects:
            cls = VOC_CLASSES.index(name)
            assert cls > 0 and truncated in (0, 1)
            assert 1 <= x0 <= x1 <= 160 and 1 <= y0 <= y1 <= 160  # 1-based, inclusive
            box = seg[y0 - 1:y1, x0 - 1:x1]
            assert (box == cls).sum() >= MIN_PIXELS
            # tight: each edge row / column holds the object (its class or its void outline)
            for edge in (box[0], box[-1], box[:, 0], box[:, -1]):
                assert np.isin(edge, (cls, 255)).any()
            # truncated objects are cut by the frame, so their box reaches it
            assert not truncated or min(x0, y0) == 1 or max(x1, y1) == 160
            covered[cls, y0 - 1:y1, x0 - 1:x1] = True
        # and the boxes hold the class pixels (up to a skipped tiny remnant)
        for cls in set(np.unique(seg).tolist()) - {0, 255}:
            assert ((seg == cls) & ~covered[cls]).sum() < MIN_PIXELS
    assert num_objects > len(list((root / 'Annotations').glob('*.xml')))  # some images have several


def test_coco_json(small):
    root = small['coco']
    for split, first_id in (('train', 1), ('val', 1_000_001)):
        data = json.loads((root / f'annotations/instances_{split}2017.json').read_text())
        assert [c['id'] for c in data['categories']] == [1, 3, 13, 18, 44, 85]
        assert tuple(c['name'] for c in data['categories']) == COCO_CLASSES
        assert data['images'][0] == dict(id=first_id, file_name=f'{first_id:012d}.jpg', height=160, width=192)
        assert len(data['images']) == SMALL[f'num_{split}']
        for img in data['images']:
            assert (root / f'{split}2017' / img['file_name']).is_file()
        ids = [a['id'] for a in data['annotations']]
        assert len(ids) == len(set(ids)) and len(ids) >= 2 * len(data['images'])
        for ann in data['annotations']:
            x, y, w, h = ann['bbox']
            assert ann['iscrowd'] == 0 and ann['area'] > 0 and w >= 1 and h >= 1
            assert 0 <= x and 0 <= y and x + w <= 192 and y + h <= 160
            assert all(len(p) >= 6 and len(p) % 2 == 0 for p in ann['segmentation'])
            # the polygons rasterise back to the annotated box and area
            rle = mask_utils.merge(mask_utils.frPyObjects(ann['segmentation'], 160, 192))
            assert np.abs(mask_utils.toBbox(rle) - ann['bbox']).max() <= 1
            assert 0.9 * ann['area'] <= mask_utils.area(rle) <= 1.1 * ann['area']


# ------------------------------------------------------------------------------ the mm datasets read them
def test_mmseg_cityscapes_dataset_reads_it(small):
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = mmseg.datasets.CityscapesDataset(
            data_root=str(small['cityscapes']),
            data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')])
        assert len(ds) == 2
        for i in range(len(ds)):
            item = ds[i]
            assert tuple(item['inputs'].shape) == (3, 128, 256)
            labels = set(item['data_samples'].gt_sem_seg.data.unique().tolist())
            assert labels <= set(range(19)) | {255} and len(labels - {255}) >= 5


def test_mmseg_voc_dataset_reads_it(small):
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = mmseg.datasets.PascalVOCDataset(
            data_root=str(small['voc']), ann_file='ImageSets/Segmentation/val.txt',
            data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')])
        assert len(ds) == 2
        for i in range(len(ds)):
            item = ds[i]
            assert tuple(item['inputs'].shape) == (3, 160, 160)
            labels = set(item['data_samples'].gt_sem_seg.data.unique().tolist())
            assert labels <= set(range(21)) | {255} and {0, 255} < labels


def test_mmdet_voc_dataset_reads_it(small, tmp_path):
    (tmp_path / 'VOCdevkit').mkdir()
    (tmp_path / 'VOCdevkit/VOC2007').symlink_to(small['voc'], target_is_directory=True)
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = mmdet.datasets.VOCDataset(  # as mmdet's voc0712 config builds its test set
            data_root=f'{tmp_path}/VOCdevkit/', ann_file='VOC2007/ImageSets/Main/test.txt',
            data_prefix=dict(sub_data_root='VOC2007/'), test_mode=True,
            pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', scale=(1000, 600), keep_ratio=True),
                      dict(type='LoadAnnotations', with_bbox=True),
                      dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                                            'scale_factor'))])
        assert len(ds) == 2 and ds.metainfo['dataset_type'] == 'VOC2007'
        for i in range(len(ds)):
            item = ds[i]
            sample = item['data_samples']
            assert tuple(item['inputs'].shape) == (3, 600, 600) and sample.ori_shape == (160, 160)
            inst = sample.gt_instances
            objects = _voc_objects(small['voc'] / 'Annotations' / f'{sample.img_id}.xml')
            assert len(inst) == len(objects) >= 1 and len(sample.ignored_instances) == 0
            assert inst.labels.tolist() == [VOC_CLASSES.index(name) - 1 for name, _, _ in objects]
            assert inst.labels.min() >= 0 and inst.labels.max() < 20
            # test-time gt stays in original image coordinates: the XML boxes minus one
            assert inst.bboxes.tensor.tolist() == [[v - 1 for v in box] for _, box, _ in objects]


def test_mmdet_coco_dataset_reads_it(small):
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = mmdet.datasets.CocoDataset(
            data_root=str(small['coco']), ann_file='annotations/instances_val2017.json',
            data_prefix=dict(img='val2017/'), metainfo=dict(classes=COCO_CLASSES),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                      dict(type='PackDetInputs')])
        assert len(ds) == 2
        for i in range(len(ds)):
            item = ds[i]
            assert tuple(item['inputs'].shape) == (3, 160, 192)
            inst = item['data_samples'].gt_instances
            boxes = inst.bboxes.tensor
            assert len(boxes) >= 2 and len(inst.masks) == len(boxes)
            assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
            assert (boxes[:, 2] <= 192).all() and (boxes[:, 3] <= 160).all()
            assert ((boxes[:, 2:] - boxes[:, :2]) >= 1).all()
            assert inst.labels.min() >= 0 and inst.labels.max() < len(COCO_CLASSES)
            assert inst.masks.masks.shape[1:] == (160, 192) and inst.masks.areas.min() > 0


# ------------------------------------------------------------------------------ determinism, idempotence
@pytest.mark.parametrize('name', sorted(GENERATORS))
def test_deterministic_in_the_seed(tmp_path, small, name):
    gen = GENERATORS[name]
    again = _files(gen(tmp_path / 'a', **SMALL))
    assert again == _files(small[name])
    other = _files(gen(tmp_path / 'b', **SMALL, seed=1))
    assert other.keys() == again.keys()
    data = [k for k in again if k.endswith(('.png', '.jpg', '.json', '.xml')) and k != '.complete.json']
    assert data and all(again[k] != other[k] for k in data)  # every image / label / annotation file


def test_images_do_not_depend_on_the_counts(tmp_path, small):
    more = generate_voc(tmp_path / 'voc', num_train=2, num_val=3)
    for name in ('JPEGImages/2012_000001.jpg', 'SegmentationClass/2012_500001.png',
                 'Annotations/2012_500001.xml'):
        assert (more / name).read_bytes() == (small['voc'] / name).read_bytes()


def test_idempotent_unless_forced_or_changed(tmp_path):
    root = generate_cityscapes(tmp_path / 'cs', num_train=2, num_val=2)
    img = root / 'leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png'
    original, mtime = img.read_bytes(), img.stat().st_mtime_ns
    img.write_bytes(b'tampered')
    tampered_mtime = img.stat().st_mtime_ns
    assert generate_cityscapes(tmp_path / 'cs', num_train=2, num_val=2) == root
    assert img.read_bytes() == b'tampered' and img.stat().st_mtime_ns == tampered_mtime  # not rewritten
    generate_cityscapes(tmp_path / 'cs', num_train=2, num_val=2, force=True)
    assert img.read_bytes() == original and img.stat().st_mtime_ns >= mtime
    # different parameters: the old generation is replaced, stale files included
    generate_cityscapes(tmp_path / 'cs', num_train=2, num_val=1)
    assert not img.exists()
    assert json.loads((root / '.complete.json').read_text())['num_val'] == 1
    # an interrupted run (no marker) is regenerated
    (root / '.complete.json').unlink()
    (root / 'gtFine/stale.txt').write_text('x')
    generate_cityscapes(tmp_path / 'cs', num_train=2, num_val=1)
    assert not (root / 'gtFine/stale.txt').exists() and (root / '.complete.json').is_file()


@pytest.mark.parametrize('name', sorted(GENERATORS))
@pytest.mark.parametrize('kwargs,param', [(dict(num_train=0), 'num_train'), (dict(num_val=-1), 'num_val'),
                                          (dict(num_train=2.5), 'num_train'), (dict(num_val=True), 'num_val'),
                                          (dict(size=(16, 16)), 'size'), (dict(size=(128, )), 'size'),
                                          (dict(size='128x256'), 'size'), (dict(seed=-1), 'seed')])
def test_bad_arguments_raise_value_error(tmp_path, name, kwargs, param):
    with pytest.raises(ValueError, match=f'^{param} '):
        GENERATORS[name](tmp_path / name, **{**SMALL, **kwargs})
    assert not (tmp_path / name).exists()  # nothing written


# ------------------------------------------------------------------------------ class coverage
def _label_counts(paths):
    counts = np.zeros(256, np.int64)
    for p in paths:
        counts += np.bincount(np.array(Image.open(p)).ravel(), minlength=256)
    return counts


def test_every_class_occurs_in_a_default_val_split(tmp_path):
    """Default val count and size (train kept minimal to stay fast): all classes are present."""
    cs = generate_cityscapes(tmp_path / 'cs', num_train=1)
    counts = _label_counts(sorted((cs / 'gtFine/val').rglob('*.png')))
    assert (counts[:19] > 0).all() and counts[19:255].sum() == 0
    assert counts[:19].min() / counts[:19].sum() > 1e-3  # no class is vanishingly rare
    voc = generate_voc(tmp_path / 'voc', num_train=1)
    counts = _label_counts(sorted((voc / 'SegmentationClass').glob('2012_5*.png')))
    assert (counts[:21] > 0).all() and counts[21:255].sum() == 0
    boxed = {name for p in (voc / 'Annotations').glob('2012_5*.xml') for name, _, _ in _voc_objects(p)}
    assert boxed == set(VOC_CLASSES[1:])
    coco = generate_coco(tmp_path / 'coco', num_train=1)
    anns = json.loads((coco / 'annotations/instances_val2017.json').read_text())['annotations']
    per_cat = np.bincount([a['category_id'] for a in anns], minlength=86)
    assert (per_cat[[1, 3, 13, 18, 44, 85]] >= 10).all()


# ------------------------------------------------------------------------------ the CLI
def test_cli_generates_into_out_dir(tmp_path, capsys):
    generate_data.main(['voc', '--out-dir', str(tmp_path), '--num-train', '2', '--num-val', '1', '--seed', '3'])
    root = tmp_path / 'voc'
    assert (root / 'ImageSets/Segmentation/val.txt').read_text().split() == ['2012_500000']
    assert json.loads((root / '.complete.json').read_text())['seed'] == 3
    assert 'voc' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='num_val'):
        generate_data.main(['coco', '--out-dir', str(tmp_path), '--num-val', '0'])

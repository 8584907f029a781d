"""Writing the synthetic scenes to disk in the real Cityscapes, PASCAL VOC 2012 and COCO formats.

A ``generate_*`` checks its arguments and keeps an existing identical generation (the
``.complete.json`` marker), unless ``force``. Otherwise every image is rendered with its own random
generator, seeded by the dataset, the split and the image index, so an image does not depend on
how many images came before it or on the requested counts; the generation is deterministic in
``seed``. The files are what the unmodified mmseg / mmdet datasets read.

Cityscapes (``mmseg.datasets.CityscapesDataset``)::

    leftImg8bit/{train,val}/{city}/{city}_{seq:06d}_000019_leftImg8bit.png
    gtFine/{train,val}/{city}/{city}_{seq:06d}_000019_gtFine_labelTrainIds.png

PASCAL VOC 2012 (``mmseg.datasets.PascalVOCDataset`` and ``mmdet.datasets.VOCDataset``)::

    JPEGImages/{name}.jpg                  RGB, JPEG quality 95
    SegmentationClass/{name}.png           palette ('P') PNG with the VOC colour map
    Annotations/{name}.xml                 VOC XML: <size>, one <object> with <bndbox> per object
    ImageSets/Segmentation/{train,val,trainval}.txt
    ImageSets/Main/{train,val,test}.txt    test = val (mmdet's VOC configs test on Main/test.txt)

For mmdet place (or link) the VOC directory as ``VOCdevkit/VOC2007``. There is no
``Main/trainval.txt``: mmdet's VOC0712 config trains on it, which here would include the test
images.

COCO (``mmdet.datasets.CocoDataset``): ``segmentation`` is the outline polygon(s) of an object's
visible mask, ``bbox`` its box and ``area`` its pixel count::

    annotations/instances_{train,val}2017.json
    {train,val}2017/{image_id:012d}.jpg    RGB, JPEG quality 95
"""
from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from . import cityscapes, coco, voc

MARKER = '.complete.json'
MAX_IMAGES = 100_000
# Seed coordinates of an image: (seed, dataset id, split id, index).
DATASET_IDS = {'cityscapes': 1, 'voc': 2, 'coco': 3}
SPLIT_IDS = {'train': 0, 'val': 1}


# ----------------------------------------------------------------------------------------------
# Shared by the generators: argument checks, the marker, the per-image generators, image writers
# ----------------------------------------------------------------------------------------------
def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_args(num_train, num_val, size, seed, min_side=64):
    """Validate the common generator arguments; returns ``size`` as a tuple of ints."""
    for name, v in (('num_train', num_train), ('num_val', num_val)):
        if not _is_int(v) or not 1 <= v <= MAX_IMAGES:
            raise ValueError(f'{name} must be an integer in [1, {MAX_IMAGES}], got {v!r}')
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(_is_int(v) and min_side <= v <= 4096 for v in size)):
        raise ValueError(f'size must be (height, width) with integers in [{min_side}, 4096], '
                         f'got {size!r}')
    if not _is_int(seed) or seed < 0:
        raise ValueError(f'seed must be an integer >= 0, got {seed!r}')
    return int(size[0]), int(size[1])


def reuse_or_reset(root, params, outputs, force):
    """True when ``root`` already holds exactly this generation; otherwise clear the old one.

    The marker is removed first and written last (``mark_complete``), so an interrupted run is
    never mistaken for a complete one. Only the generator's own ``outputs`` are deleted.
    """
    marker = Path(root) / MARKER
    if not force and marker.is_file():
        try:
            if json.loads(marker.read_text()) == params:
                return True
        except ValueError:
            pass
    marker.unlink(missing_ok=True)
    for name in outputs:
        shutil.rmtree(Path(root) / name, ignore_errors=True)
    return False


def mark_complete(root, params):
    (Path(root) / MARKER).write_text(json.dumps(params, indent=2, sort_keys=True) + '\n')


def _generate(root, num_train, num_val, size, seed, force, *, dataset, version, render, write,
              outputs):
    """What every generator does around writing its files; returns ``root`` as a Path.

    ``write(root, scenes, h, w)`` writes the dataset, where ``scenes`` maps each split to an
    iterator over ``(index, render(rng, index, h, w))`` of its images; ``outputs`` are the top-level
    entries it writes (cleared before a new generation). ``version`` is part of the marker: raising
    it replaces generations written by older code.
    """
    h, w = check_args(num_train, num_val, size, seed)
    root = Path(root)
    params = dict(dataset=dataset, num_train=int(num_train), num_val=int(num_val), size=[h, w],
                  seed=int(seed), version=version)
    if reuse_or_reset(root, params, outputs, force):
        return root
    def scenes(split, num):
        for i in range(num):
            rng = np.random.default_rng([int(seed), DATASET_IDS[dataset], SPLIT_IDS[split], i])
            yield i, render(rng, i, h, w)

    write(root, {'train': scenes('train', num_train), 'val': scenes('val', num_val)}, h, w)
    mark_complete(root, params)
    return root


def _imwrite(path, img, flags=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img, list(flags)):
        raise OSError(f'could not write {path}')


def write_rgb(path, img, jpeg_quality=None):
    """Write an RGB uint8 image with cv2 (which expects BGR); JPEG when ``jpeg_quality`` is set."""
    flags = () if jpeg_quality is None else (cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality))
    _imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), flags)


# ----------------------------------------------------------------------------------------------
# Cityscapes
# ----------------------------------------------------------------------------------------------
CITIES = {'train': ('aachen', 'bochum', 'bremen'), 'val': ('frankfurt', 'lindau', 'munster')}


def _write_cityscapes(root, scenes, h, w):
    for split, images in scenes.items():
        cities = CITIES[split]
        for i, (img, lbl) in images:
            city = cities[i % len(cities)]
            stem = f'{city}_{i // len(cities):06d}_000019'
            write_rgb(root / 'leftImg8bit' / split / city / f'{stem}_leftImg8bit.png', img)
            _imwrite(root / 'gtFine' / split / city / f'{stem}_gtFine_labelTrainIds.png', lbl)


def generate_cityscapes(root, num_train=300, num_val=50, size=(128, 256), seed=0, force=False):
    """Write a synthetic Cityscapes-format dataset under ``root``; returns ``root`` as a Path.

    Deterministic in ``seed``; a finished generation with the same parameters is reused unless
    ``force``.
    """
    return _generate(root, num_train, num_val, size, seed, force, dataset='cityscapes', version=1,
                     render=cityscapes.render_scene, write=_write_cityscapes,
                     outputs=('leftImg8bit', 'gtFine'))


# ----------------------------------------------------------------------------------------------
# PASCAL VOC
# ----------------------------------------------------------------------------------------------
NAME_OFFSET = {'train': 0, 'val': 500_000}  # disjoint VOC-style names: 2012_000000, 2012_500000


def voc_palette():
    """The VOC colour map (bit-interleaved class index); index 255 is (224, 224, 192)."""
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - j)
            c >>= 3
        pal[i] = rgb
    return pal


def _element(parent, tag, **children):
    """``<tag>`` under ``parent`` with one text child per keyword, in order."""
    el = ET.SubElement(parent, tag)
    for key, value in children.items():
        ET.SubElement(el, key).text = str(value)
    return el


def annotation_xml(name, h, w, objects):
    """The VOC detection annotation of one image (the fields mmdet's ``XMLDataset`` reads)."""
    root = ET.Element('annotation')
    ET.SubElement(root, 'filename').text = f'{name}.jpg'
    _element(root, 'size', width=w, height=h, depth=3)
    ET.SubElement(root, 'segmented').text = '1'
    for cls, box, cut in objects:
        obj = _element(root, 'object', name=voc.VOC_CLASSES[cls], pose='Unspecified',
                       truncated=int(cut), difficult=0)
        _element(obj, 'bndbox', **dict(zip(('xmin', 'ymin', 'xmax', 'ymax'), box)))
    ET.indent(root, '\t')
    return ET.tostring(root, encoding='unicode') + '\n'


def _write_voc(root, scenes, h, w):
    palette = voc_palette().reshape(-1).tolist()
    for sub in ('SegmentationClass', 'Annotations', 'ImageSets/Segmentation', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sets, main = root / 'ImageSets' / 'Segmentation', root / 'ImageSets' / 'Main'
    names = {}
    for split, images in scenes.items():
        names[split] = []
        for i, (img, lbl, objects) in images:
            name = f'2012_{NAME_OFFSET[split] + i:06d}'
            names[split].append(name)
            write_rgb(root / 'JPEGImages' / f'{name}.jpg', img, jpeg_quality=95)
            png = Image.frombytes('P', (w, h), np.ascontiguousarray(lbl).tobytes())
            png.putpalette(palette)
            png.save(root / 'SegmentationClass' / f'{name}.png')
            (root / 'Annotations' / f'{name}.xml').write_text(annotation_xml(name, h, w, objects))
        listing = '\n'.join(names[split]) + '\n'
        (sets / f'{split}.txt').write_text(listing)
        (main / f'{split}.txt').write_text(listing)
    (sets / 'trainval.txt').write_text('\n'.join(names['train'] + names['val']) + '\n')
    (main / 'test.txt').write_text('\n'.join(names['val']) + '\n')  # mmdet's VOC test split


def generate_voc(root, num_train=300, num_val=100, size=(160, 160), seed=0, force=False):
    """Write a synthetic PASCAL VOC-format segmentation + detection dataset; returns ``root``.

    Deterministic in ``seed``; a finished generation with the same parameters is reused unless
    ``force``.
    """
    return _generate(root, num_train, num_val, size, seed, force, dataset='voc',
                     version=2,  # 2: added the detection annotations
                     render=voc.render_scene, write=_write_voc,
                     outputs=('JPEGImages', 'SegmentationClass', 'Annotations', 'ImageSets'))


# ----------------------------------------------------------------------------------------------
# COCO
# ----------------------------------------------------------------------------------------------
ID_OFFSET = {'train': 0, 'val': 1_000_000}  # image ids are unique across splits, as in COCO


def _annotation(mask, ann_id, image_id, category_id):
    """COCO annotation of one visible mask: outline polygons, box and pixel area.

    Contours are traced on the 2x upsampled mask, so vertices lie a quarter pixel inside the
    pixel edges: thin parts (limbs, posts) keep their width when the polygon is rasterised.
    """
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return None
    crop = np.ascontiguousarray(mask[y:y + h, x:x + w]).view(np.uint8)
    up = cv2.resize(crop, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = [(c.reshape(-1, 2) / 2 + (x + 0.25, y + 0.25)).reshape(-1).round(2).tolist()
             for c in contours if len(c) >= 3]
    if not polys:
        return None
    return dict(id=ann_id, image_id=image_id, category_id=category_id, segmentation=polys,
                area=float(np.count_nonzero(crop)), bbox=[float(x), float(y), float(w), float(h)],
                iscrowd=0)


def _write_coco(root, scenes, h, w):
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    categories = [dict(id=i, name=n, supercategory=s) for i, n, s in coco.CATEGORIES]
    for split, images in scenes.items():
        image_infos, annotations = [], []
        for i, (img, objects) in images:
            image_id = ID_OFFSET[split] + i + 1
            file_name = f'{image_id:012d}.jpg'
            write_rgb(root / f'{split}2017' / file_name, img, jpeg_quality=95)
            image_infos.append(dict(id=image_id, file_name=file_name, height=h, width=w))
            for k, (cls, mask) in enumerate(objects):
                if np.count_nonzero(mask) < coco.MIN_AREA:
                    continue
                ann = _annotation(mask, image_id * 100 + k + 1, image_id, coco.CATEGORIES[cls][0])
                if ann is not None:
                    annotations.append(ann)
        data = dict(info=dict(description=f'mmequi synthetic COCO-format {split} set', version='1.0',
                              year=2017),
                    licenses=[], images=image_infos, annotations=annotations, categories=categories)
        (root / 'annotations' / f'instances_{split}2017.json').write_text(json.dumps(data))


def generate_coco(root, num_train=400, num_val=60, size=(160, 192), seed=0, force=False):
    """Write a synthetic COCO-format detection dataset under ``root``; returns ``root`` as a Path.

    Deterministic in ``seed``; a finished generation with the same parameters is reused unless
    ``force``.
    """
    return _generate(root, num_train, num_val, size, seed, force, dataset='coco', version=1,
                     render=coco.render_scene, write=_write_coco,
                     outputs=('annotations', 'train2017', 'val2017'))

"""Where the defense's clean-accuracy price comes from, from the cells of a ``tools/benchmark_defense.py`` run on a
segmentor: per setting (clean + defense, PGD + defense, share recovered, passes, equivariance score of the clean and
of the purified clean images; with ``--adaptive``, the adaptive attack through each setting and its difference from
the first setting on the same images, with a 95 % interval from a paired bootstrap over the images), per class (IoU
clean and clean + defense, with the class's pixel share), and per image (the spread of the mIoU change). Writes ``analysis.md`` into the benchmark's work dir and prints it.

    python docs/benchmark/clean-price/analyse.py work_dirs/benchmark/clean-price-dev-cityscapes [SETTING ...]
"""
import json
import os.path as osp
import sys

import numpy as np

from mmequi.evaluation.areas import miou, sum_areas
from mmequi.evaluation.statistics import bootstrap_draws, paired_interval as records_interval


def load(work_dir):
    """{(attack, defense label): (cell record, [per-image records])}."""
    cells = {}
    for record in json.load(open(osp.join(work_dir, 'cells.json'))):
        with open(osp.join(work_dir, record['per_image'])) as f:
            images = [json.loads(line) for line in f]
        cells[record['attack'], record['sweep'] if record['defense'] != 'none' else 'none'] = (record, images)
    return cells


def class_iou(images):
    """{class: (IoU %, share of the labelled pixels %)} over the images."""
    total = sum_areas(image['metrics']['class_areas'] for image in images)
    labelled = sum(v[2] for v in total.values())
    return {int(c): (100 * i / u, 100 * n / labelled) for c, (i, u, n) in total.items() if u > 0}


def paired_interval(images, reference, draws=2000, seed=0):
    """95 % interval of mIoU(images) − mIoU(reference) over the same images (matched by path), resampled together
    (mmequi.evaluation.statistics)."""
    runs, before = ({i['img_path']: i['metrics'] for i in run} for run in (images, reference))
    return records_interval(runs, before, bootstrap_draws([i['img_path'] for i in images], draws,
                                                          np.random.default_rng(seed)))


def adaptive_cells(cells, adaptive, setting, reference, clean, attacked):
    """The adaptive attack's columns of one setting's row (empty cells where it was not run)."""
    if adaptive is None:
        return ''
    if (adaptive, setting) not in cells:
        return ' | | |'
    record, images = cells[adaptive, setting]
    value = record['metrics']['mIoU']
    low, high = paired_interval(images, cells[adaptive, reference][1])
    difference = value - cells[adaptive, reference][0]['metrics']['mIoU']
    return (f" {value:.2f} | {100 * (value - attacked) / (clean - attacked):.1f} % | "
            + (f"{difference:+.2f} ({low:+.2f}, {high:+.2f}) |" if setting != reference else '– |'))


def main(work_dir, focus=None):
    cells = load(work_dir)
    attack = next(a for a, d in cells if a != 'none' and d == 'none')  # the transferred attack of the baselines
    clean, attacked = (cells[a, 'none'][0]['metrics']['mIoU'] for a in ('none', attack))
    settings = [d for a, d in cells if a == 'none' and d != 'none']
    adaptive = next((a for a, d in cells if a not in ('none', attack)), None)
    # the adaptive column's differences are against the first setting the adaptive attack was run on
    base = next((d for d in settings if (adaptive, d) in cells), settings[0])
    lines = [f'# Clean price on `{work_dir}`', '', f'clean {clean:.2f} mIoU, {attack} {attacked:.2f}', '',
             '| setting | clean + defense | change | PGD + defense | recovered | fwd+bwd passes/img | '
             'equi. clean | equi. purified clean | images losing > 5 mIoU |'
             + (f' {adaptive} → defense | kept | vs {base} (95 % interval) |' if adaptive else ''),
             '|' + '---|' * (12 if adaptive else 9)]
    clean_images = {i['img_path']: i for i in cells['none', 'none'][1]}
    for setting in settings:
        on_clean, images = cells['none', setting]
        on_attacked = cells[attack, setting][0]
        scores = [(i['equivariance'].get('clean'), i['equivariance'].get('purified')) for i in images]
        drops = [clean_images[i['img_path']]['metrics']['mIoU'] - i['metrics']['mIoU'] for i in images]
        recovered = (on_attacked['metrics']['mIoU'] - attacked) / (clean - attacked)
        lines.append(f"| {setting} | {on_clean['metrics']['mIoU']:.2f} | {on_clean['metrics']['mIoU'] - clean:+.2f} | "
                     f"{on_attacked['metrics']['mIoU']:.2f} | {100 * recovered:.1f} % | "
                     f"{on_attacked.get('passes_per_image', {}).get('forward_backward', float('nan')):.1f} | "
                     f"{np.mean([s[0] for s in scores]):.4f} | {np.mean([s[1] for s in scores]):.4f} | "
                     f"{sum(d > 5 for d in drops)} of {len(drops)} |" + adaptive_cells(cells, adaptive, setting,
                                                                                   base, clean, attacked))
    for setting in focus or settings[:1]:
        before, after = class_iou(cells['none', 'none'][1]), class_iou(cells['none', setting][1])
        rows = sorted(before, key=lambda c: after.get(c, (0, 0))[0] - before[c][0])
        lines += ['', f'## Per class: clean against clean + `{setting}` (pixel share of the labels)', '',
                  '| class | pixels % | IoU clean | IoU clean + defense | change |', '|---|---|---|---|---|']
        lines += [f'| {c} | {before[c][1]:.2f} | {before[c][0]:.2f} | {after.get(c, (0, 0))[0]:.2f} | '
                  f'{after.get(c, (0, 0))[0] - before[c][0]:+.2f} |' for c in rows]
        shares = np.array([before[c][1] for c in rows])
        changes = np.array([after.get(c, (0, 0))[0] - before[c][0] for c in rows])
        small = shares < np.median(shares)
        lines += ['', f'Classes below the median pixel share lose {-changes[small].mean():.2f} IoU points on average, '
                      f'those above it {-changes[~small].mean():.2f}; mIoU from the summed areas: '
                      f'{miou(sum_areas(i["metrics"]["class_areas"] for i in cells["none", setting][1])):.2f}.']
    text = '\n'.join(lines) + '\n'
    with open(osp.join(work_dir, 'analysis.md'), 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:] or None)

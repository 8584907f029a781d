"""Convert the equivariance scores of report cells made before the score was normalised (2026-11-27) from the sum
over view pairs to the mean cosine in [-1, 1] (docs/method.md, "Equivariance score").

    python tools/misc/rescale_scores.py WORK_DIR        # a tools/robustness_report.py work dir

The old score was a sum over the P = K(K+1)/2 pairs of the identity and the K views the run scored with (the
defense's own views when it has them: equivariance/invariance purifiers, ``transforms`` or ``num_views``; else the 8
reference views) and over the feature's levels (one for every feature but a whole 'neck' or 'backbone', which this
script refuses). Every cells/*/cell.json and the per_image.jsonl it points to are divided by P, once: a converted or
newer record (``settings.score_scale == 'mean'``) is left as it is. A one-off: tools/robustness_report.py refuses a
work dir holding unconverted cells (so a report never mixes the two scales) and names this command.
"""
import argparse
import glob
import json
import os.path as osp

from mmequi.apis.config import load_component

VIEWS_DEFENSES = ('EquivariancePurifier', 'InvariancePurifier')
STAGES = ('clean', 'attacked', 'purified')
MULTI_LEVEL_FEATURES = ('neck', 'backbone')  # every level of the module; 'neck.0', 'logits', ... are one level


def pairs(record):
    """P·L of the run that made ``record``: the old score's range."""
    feature = record.get('settings', {}).get('feature')
    if feature in MULTI_LEVEL_FEATURES:
        raise ValueError(f"rescale_scores: cell {record.get('attack')} / {record['defense']} scored the feature "
                         f"{feature!r}, several levels whose number this script cannot know; convert it by hand")
    defense = dict(load_component('defense', record['defense']) or {}, **record.get('defense_opts', {}))
    views = 8
    if defense.get('type') in VIEWS_DEFENSES:
        views = len(defense['transforms']) if defense.get('transforms') else defense.get('num_views', 8)
    return views * (views + 1) // 2


def rescale_record(work_dir, record):
    """Divide one old record's scores (and its per-image ones) by its P·L; True if it was converted."""
    if record.get('settings', {}).get('score_scale') == 'mean':
        return False
    p = pairs(record)
    for stage in STAGES:
        if f'equivariance/{stage}' in record['metrics']:
            record['metrics'][f'equivariance/{stage}'] /= p
    per_image = osp.join(work_dir, record['per_image']) if record.get('per_image') else None
    if per_image and osp.isfile(per_image):
        with open(per_image) as f:
            lines = [json.loads(line) for line in f]
        for line in lines:  # each line marked, so an interrupted conversion never divides a line twice
            if line.get('score_scale') != 'mean':
                line['equivariance'] = {k: v / p for k, v in line.get('equivariance', {}).items()}
                line['score_scale'] = 'mean'
        with open(per_image, 'w') as f:
            f.writelines(json.dumps(line) + '\n' for line in lines)
    record.setdefault('settings', {})['score_scale'] = 'mean'
    record['settings']['score_rescaled_from_sum_over_pairs'] = p
    return True


def rescale(work_dir):
    """Convert every old cell of a report work dir (idempotent) -> how many were converted."""
    converted = 0
    for path in sorted(glob.glob(osp.join(work_dir, 'cells', '*', 'cell.json'))):
        with open(path) as f:
            record = json.load(f)
        if rescale_record(work_dir, record):
            with open(path, 'w') as f:
                json.dump(record, f, indent=2)
            converted += 1
    return converted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dir')
    args = parser.parse_args(argv)
    print(f'{rescale(args.work_dir)} cells converted in {args.work_dir}')


if __name__ == '__main__':
    main()

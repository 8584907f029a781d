"""Convert the equivariance scores of report cells made before the score was normalised (2026-11-27) from the sum
over view pairs to the mean cosine in [-1, 1] (docs/method.md, "Equivariance score").

    python tools/misc/rescale_scores.py WORK_DIR        # a tools/robustness_report.py work dir

The old score was a sum over the P = K(K+1)/2 pairs of the identity and the K views the run scored with: the
defense's own views when it has them (equivariance/invariance purifiers, ``num_views``), else the 8 reference views.
Every cells/*/cell.json and the per_image.jsonl it points to are divided by P, once: a converted or newer record
(``settings.score_scale == 'mean'``) is left as it is. Re-run the report command afterwards to rewrite report.md.
"""
import argparse
import glob
import json
import os.path as osp

from mmequi.apis.config import load_component

VIEWS_DEFENSES = ('EquivariancePurifier', 'InvariancePurifier')
STAGES = ('clean', 'attacked', 'purified')


def pairs(record):
    defense = load_component('defense', record['defense']) or {}
    views = 8
    if defense.get('type') in VIEWS_DEFENSES:
        views = record.get('defense_opts', {}).get('num_views', defense.get('num_views', 8))
    return views * (views + 1) // 2


def rescale(work_dir):
    converted = 0
    for path in sorted(glob.glob(osp.join(work_dir, 'cells', '*', 'cell.json'))):
        with open(path) as f:
            record = json.load(f)
        if record.get('settings', {}).get('score_scale') == 'mean':
            continue
        p = pairs(record)
        for stage in STAGES:
            if f'equivariance/{stage}' in record['metrics']:
                record['metrics'][f'equivariance/{stage}'] /= p
        if record.get('per_image') and osp.isfile(osp.join(work_dir, record['per_image'])):
            per_image = osp.join(work_dir, record['per_image'])
            with open(per_image) as f:
                lines = [json.loads(line) for line in f]
            for line in lines:
                line['equivariance'] = {k: v / p for k, v in line.get('equivariance', {}).items()}
            with open(per_image, 'w') as f:
                f.writelines(json.dumps(line) + '\n' for line in lines)
        record.setdefault('settings', {})['score_scale'] = 'mean'
        record['settings']['score_rescaled_from_sum_over_pairs'] = p
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

"""The main job of ``make demo``: evaluate the demo models clean, attacked, attacked + defended and clean + defended
on the synthetic test bed, and print one table (also written to ``work_dirs/demo/report.md``).

Each cell is one ``tools/test.py`` run in a fresh process, exactly as a user would type it (the commands are in
the report); its ``metrics.json`` / ``robustness.json`` are collected from the run's log dir.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ATTACK, DEFENSE = 'pgd_linf_eps4_50steps', 'equivariance'
ROBUSTNESS_REPORT = 'docs/robustness/README.md'  # adaptive attacks, baselines, sweeps: `make report`
# (setting, --attack, --defense, the stage whose equivariance score describes the predicted input)
SETTINGS = [
    ('clean', 'none', 'none', 'clean'),
    ('attacked', ATTACK, 'none', 'attacked'),
    ('attacked + defense', ATTACK, DEFENSE, 'purified'),
    ('clean + defense', 'none', DEFENSE, 'purified'),
]
# (row label, config, checkpoint, task metric keys)
DEMO_MODELS = [
    ('Cityscapes-format FCN-R18', 'configs/demo/fcn_r18-d8_synthetic-cityscapes.py',
     'checkpoints/fcn_r18-d8_synthetic-cityscapes.pth', ('mIoU', 'aAcc')),
    ('VOC-format FCN-R18', 'configs/demo/fcn_r18-d8_synthetic-voc.py',
     'checkpoints/fcn_r18-d8_synthetic-voc.pth', ('mIoU', 'aAcc')),
    ('COCO-format Faster R-CNN R18', 'configs/demo/faster-rcnn_r18_fpn_synthetic-coco.py',
     'checkpoints/faster-rcnn_r18_fpn_synthetic-coco.pth', ('coco/bbox_mAP', 'coco/bbox_mAP_50')),
]


def test_command(config, checkpoint, work_dir, extra_args=()):
    return ['python', 'tools/test.py', config, checkpoint, '--work-dir', work_dir, *extra_args]


def run_test(command):
    """Run one tools/test.py command in a fresh process -> (metrics, robustness.json or {}, seconds)."""
    start = time.time()
    env = dict(os.environ, PYTHONWARNINGS='ignore')  # keep the table readable: errors still reach stderr
    subprocess.run([sys.executable, *command[1:]], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
    work_dir = osp.join(ROOT, command[command.index('--work-dir') + 1])
    log_dir = max(glob.glob(osp.join(work_dir, '*', 'metrics.json')), key=osp.getmtime)
    log_dir = osp.dirname(log_dir)
    with open(osp.join(log_dir, 'metrics.json')) as f:
        metrics = json.load(f)
    robust = {}
    if osp.isfile(osp.join(log_dir, 'robustness.json')):
        with open(osp.join(log_dir, 'robustness.json')) as f:
            robust = json.load(f)
    return metrics, robust, time.time() - start


def fmt(value):
    return '-' if value is None else (f'{value:.3f}' if abs(value) <= 1 else f'{value:.2f}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--models', nargs='+', help='only the demo models whose config name contains one of these')
    parser.add_argument('--num-images', type=int, default=None,
                        help='evaluate the first N validation images of each dataset (default: all)')
    args = parser.parse_args(argv)
    os.makedirs(osp.join(ROOT, args.work_dir), exist_ok=True)
    subset = [] if args.num_images is None else [
        '--cfg-options', f'test_dataloader.dataset.indices={args.num_images}']
    header = ['model', 'setting', 'metric 1', 'metric 2', 'equivariance score', 's/img attack', 's/img defense']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    commands, summaries = [], []
    print('\n'.join(lines), flush=True)
    for label, config, checkpoint, keys in DEMO_MODELS:
        name = osp.splitext(osp.basename(config))[0]
        if args.models and not any(m in name for m in args.models):
            continue
        results = {}
        for setting, attack, defense, stage in SETTINGS:
            work_dir = osp.join(args.work_dir, name, setting.replace(' + ', '_'))
            command = test_command(config, checkpoint, work_dir, ['--attack', attack, '--defense', defense] + subset)
            commands.append(' '.join(shlex.quote(c) for c in command))
            metrics, robustness, _ = run_test(command)
            results[setting] = metrics
            seconds = robustness.get('seconds_per_image', {})
            shown = [f'{k.split("/")[-1]} {fmt(metrics[k])}' for k in keys]
            lines.append(f'| {label} | {setting} | {" | ".join(shown)} | '
                         f'{fmt(metrics.get(f"equivariance/{stage}"))} | {fmt(seconds.get("attack"))} | '
                         f'{fmt(seconds.get("defense"))} |')
            print(lines[-1], flush=True)
        summaries.append(summary(label, keys[0], results))
    text = '\n'.join(lines) + '\n\n' + '\n'.join(summaries)
    report = osp.join(ROOT, args.work_dir, 'report.md')
    with open(report, 'w') as f:
        f.write('# mmequi demo\n\nAttack: PGD L∞ ε = 4/255, step 1/255, 50 steps, random start, on the undefended '
                'model. Defense: equivariance purifier, reference defaults (K = 8, T = 20, ε_v = 6/255), on the logits '
                '(segmentation) or the FPN outputs (detection). The equivariance score is that of the input the '
                'model predicted on (clean, attacked or purified).\n\n'
                + text + f'\n\nAdaptive attacks (equivariance-aware PGD, BPDA + EOT, full gradient), the baselines and '
                f'the ε / K curves of the Cityscapes-format model: [{ROBUSTNESS_REPORT}]'
                f'({osp.relpath(osp.join(ROOT, ROBUSTNESS_REPORT), osp.dirname(report))}) (`make report`).\n'
                '\n## Commands\n\n```\n' + '\n'.join(commands) + '\n```\n')
    print('\n' + text + f'\nreport: {report}\nrobustness report (adaptive attacks, baselines, sweeps): '
          f'{osp.join(ROOT, ROBUSTNESS_REPORT)}')


def summary(label, key, results):
    """Attack cost, share of it the defense recovers, and the clean-accuracy cost of the defense."""
    clean, attacked = results['clean'][key], results['attacked'][key]
    defended, clean_defended = results['attacked + defense'][key], results['clean + defense'][key]
    cost = clean - attacked
    recovered = (defended - attacked) / cost if cost > 0 else float('nan')
    return (f'- {label}: the attack costs {cost:.3g} {key} ({100 * cost / clean:.0f} % of clean); the defense '
            f'recovers {100 * recovered:.0f} % of it; clean + defense changes {key} by {clean_defended - clean:+.3g}.')


if __name__ == '__main__':
    main()

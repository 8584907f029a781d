"""The main job of ``make demo``: evaluate the demo models on the synthetic test bed and print one table.

Each row is one ``tools/test.py`` run (a fresh process, as a user would run it); its metrics.json is collected
into ``work_dirs/demo/report.md``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# (row label, config, checkpoint, metric keys shown)
DEMO_MODELS = [
    ('Cityscapes-format FCN-R18', 'configs/demo/fcn_r18-d8_synthetic-cityscapes.py',
     'checkpoints/fcn_r18-d8_synthetic-cityscapes.pth', ('mIoU', 'aAcc')),
    ('VOC-format FCN-R18', 'configs/demo/fcn_r18-d8_synthetic-voc.py',
     'checkpoints/fcn_r18-d8_synthetic-voc.pth', ('mIoU', 'aAcc')),
    ('COCO-format Faster R-CNN R18', 'configs/demo/faster-rcnn_r18_fpn_synthetic-coco.py',
     'checkpoints/faster-rcnn_r18_fpn_synthetic-coco.pth', ('coco/bbox_mAP', 'coco/bbox_mAP_50')),
]


def run_test(config, checkpoint, work_dir, extra_args=()):
    """Run tools/test.py in a fresh process and return (metrics, seconds)."""
    start = time.time()
    cmd = [sys.executable, osp.join(ROOT, 'tools/test.py'), config, checkpoint, '--work-dir', work_dir,
           *extra_args]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    latest = max(glob.glob(osp.join(work_dir, '*', 'metrics.json')), key=osp.getmtime)
    with open(latest) as f:
        return json.load(f), time.time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    lines = ['| model | setting | metrics | seconds |', '|---|---|---|---|']
    for label, config, checkpoint, keys in DEMO_MODELS:
        name = osp.splitext(osp.basename(config))[0]
        metrics, seconds = run_test(config, checkpoint, osp.join(args.work_dir, name, 'clean'))
        shown = ', '.join(f'{k.split("/")[-1]} {metrics[k]:.3f}' if metrics[k] <= 1 else
                          f'{k.split("/")[-1]} {metrics[k]:.2f}' for k in keys)
        lines.append(f'| {label} | clean | {shown} | {seconds:.0f} |')
        print(lines[-1], flush=True)
    report = osp.join(args.work_dir, 'report.md')
    with open(report, 'w') as f:
        f.write('# mmequi demo\n\n' + '\n'.join(lines) + '\n')
    print('\n' + '\n'.join(lines) + f'\n\nreport: {report}')


if __name__ == '__main__':
    main()

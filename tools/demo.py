"""The main job of ``make demo``: evaluate the demo models clean, attacked, attacked + defended and clean + defended
on the synthetic test bed, and print one table (also written to ``work_dirs/demo/report.md``).

Each cell is one ``tools/test.py`` run with the arguments a user would type (the commands are in the report), run in
this process, or in ``--workers`` processes side by side (a fresh process per cell would pay the imports 18 times), by
``mmequi.apis.cells.run_test``, which returns the run's metrics and ``robustness.json``.
"""
import argparse
import multiprocessing
import os
import os.path as osp
import shlex
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import torch

from mmequi.apis.cells import run_test

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ATTACK, REFERENCE = 'pgd_linf_eps4_50steps', 'equivariance'
# The shipped default per task (docs/benchmark/clean-price/README.md, chosen on the development splits on clean
# accuracy, the adaptive proxy and cost at once): segmentors purify with the flip view, then predict through their own
# TTA merge. A detector purifies with the ×2 view at ε_v = 8/255, then fuses the boxes of the purified image and its
# mirror (round 8: its flip view costs more clean mAP than the ×2 view, round 5; NMS instead of the fusion keeps
# less under the adaptive proxy, round 7).
SEG_DEFENSE, DET_DEFENSE = 'equivariance_flip_tta', 'equivariance_fast_eps8_flip_wbf'
ROBUSTNESS_REPORT = 'docs/robustness/README.md'  # adaptive attacks, baselines, sweeps: `make report`
BENCHMARK = 'docs/benchmark/README.md'  # every defense setting's cost and robustness


def settings(defense, reference=False):
    """(setting, --attack, --defense, the stage whose equivariance score describes the predicted input) of one
    model; with ``reference``, the paper's reference defaults beside its preset."""
    presets = [defense, REFERENCE] if reference else [defense]
    return [('clean', 'none', 'none', 'clean'), ('attacked', ATTACK, 'none', 'attacked')] + [
        row for preset in presets for row in ((f'attacked + defense [{preset}]', ATTACK, preset, 'purified'),
                                              (f'clean + defense [{preset}]', 'none', preset, 'purified'))]


# The paper-faithful reference defaults beside the preset, on the first images of one model (they cost ~25×).
REFERENCE_MODEL, REFERENCE_IMAGES = 'cityscapes', 5
# (row label, config, checkpoint, task metric keys, defense preset)
DEMO_MODELS = [
    ('Cityscapes-format FCN-R18', 'configs/demo/fcn_r18-d8_synthetic-cityscapes.py',
     'checkpoints/fcn_r18-d8_synthetic-cityscapes.pth', ('mIoU', 'aAcc'), SEG_DEFENSE),
    ('VOC-format FCN-R18', 'configs/demo/fcn_r18-d8_synthetic-voc.py',
     'checkpoints/fcn_r18-d8_synthetic-voc.pth', ('mIoU', 'aAcc'), SEG_DEFENSE),
    ('COCO-format Faster R-CNN R18', 'configs/demo/faster-rcnn_r18_fpn_synthetic-coco.py',
     'checkpoints/faster-rcnn_r18_fpn_synthetic-coco.pth', ('coco/bbox_mAP', 'coco/bbox_mAP_50'), DET_DEFENSE),
]


def test_command(config, checkpoint, work_dir, extra_args=()):
    return ['python', 'tools/test.py', config, checkpoint, '--work-dir', work_dir, *extra_args]


def fmt(value):
    return '-' if value is None else (f'{value:.3f}' if abs(value) <= 1 else f'{value:.2f}')


def plan(args):
    """Every cell: (label, config, checkpoint, keys, setting, attack, defense, stage, number of images or None)."""
    cells = []
    for label, config, checkpoint, keys, defense in DEMO_MODELS:
        name = osp.splitext(osp.basename(config))[0]
        if args.models and not any(m in name for m in args.models):
            continue
        cells += [(label, config, checkpoint, keys, *setting, args.num_images) for setting in settings(defense)]
        if REFERENCE_MODEL in name and not args.no_reference:
            subset = min(REFERENCE_IMAGES, args.num_images or REFERENCE_IMAGES)
            cells += [(f'{label}, first {subset} images', config, checkpoint, keys, *setting, subset)
                      for setting in settings(defense, reference=True)]
    return cells


def command(args, cell):
    """The tools/test.py command line of one cell: the arguments a user would type."""
    label, config, checkpoint, keys, setting, attack, defense, stage, images = cell
    name = osp.splitext(osp.basename(config))[0]
    group = f'{name}_first{images}' if images else name
    work_dir = osp.join(args.work_dir, group, setting.split(' [')[0].replace(' + ', '_') +
                        (f'_{defense}' if defense != 'none' else ''))
    extra = ['--attack', attack, '--defense', defense]
    if attack != 'none':  # "attacked" and "attacked + defense" share the attacked images (same seeds)
        extra += ['--attack-cache', osp.join(args.work_dir, 'attack_cache', name)]
    if images:
        extra += ['--cfg-options', f'test_dataloader.dataset.indices={images}']
    return test_command(config, checkpoint, work_dir, extra)


def run_cells(commands, workers=1, run=None):
    """Run the cells' commands (by ``run``, default ``run_test``, in process) and yield their runs in the commands'
    order. With several workers, each a process with its share of the cores: the cells that read a model's attack
    cache wait for the first one that writes it (one attack per image, never two writers), and the attacks start
    first, last-listed first (the detector's, listed last, is the longest), so that the other cells fill the workers
    around them."""
    start, runs, run = time.time(), {}, run or run_test

    def progress(i):
        elapsed = (time.time() - start) / 60
        left = elapsed / len(runs) * (len(commands) - len(runs))  # the cells are of unequal length: a rough guide
        print(f'[demo] {len(runs)}/{len(commands)} cells done ({commands[i][commands[i].index("--work-dir") + 1]}: '
              f'{runs[i]["seconds"]:.0f} s); elapsed {elapsed:.1f} min, about {left:.1f} min left', flush=True)

    if workers <= 1:
        for i, cmd in enumerate(commands):
            runs[i] = run(cmd, in_process=True, cwd=ROOT)
            progress(i)
            yield runs[i]
        return
    cache = [cmd[cmd.index('--attack-cache') + 1] if '--attack-cache' in cmd else None for cmd in commands]
    writer = {c: cache.index(c) for c in cache if c}  # the first cell per cache attacks; the others read it
    order = sorted(range(len(commands)), key=lambda i: (0, -i) if writer.get(cache[i]) == i else (1, i))
    running = {}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn'),
                             initializer=torch.set_num_threads,
                             initargs=(max(1, (os.cpu_count() or 1) // workers), )) as pool:
        while order or running:
            for i in [i for i in order if cache[i] is None or writer[cache[i]] in (i, *runs)]:
                if len(running) < workers:
                    order.remove(i)
                    running[pool.submit(run, commands[i], in_process=True, cwd=ROOT)] = i
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                i = running.pop(future)
                runs[i] = future.result()
                progress(i)
    yield from (runs[i] for i in range(len(commands)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--models', nargs='+', help='only the demo models whose config name contains one of these')
    parser.add_argument('--num-images', type=int, default=None,
                        help='evaluate the first N validation images of each dataset (default: all)')
    parser.add_argument('--no-reference', action='store_true',
                        help='skip the reference-defaults rows (first images of the Cityscapes-format model)')
    parser.add_argument('--workers', type=int, default=1,
                        help='cells run side by side, each in a process with its share of the CPU threads (make demo: '
                        '2). Seconds per image are then measured on a shared machine, and the attacked images differ '
                        'from a one-process run within float rounding (PGD follows the sign of the gradient)')
    args = parser.parse_args(argv)
    os.makedirs(osp.join(ROOT, args.work_dir), exist_ok=True)
    header = ['model', 'setting', 'metric 1', 'metric 2', 'equivariance score', 's/img attack', 's/img defense']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    summaries, results, cells = [], {}, plan(args)
    argvs = [command(args, cell) for cell in cells]
    commands = [' '.join(shlex.quote(c) for c in argv) for argv in argvs]
    start = time.time()
    for i, run in enumerate(run_cells(argvs, args.workers)):
        label, config, checkpoint, keys, setting, attack, defense, stage, images = cells[i]
        metrics, robustness = run['metrics'], run['robustness']
        results.setdefault(label, {})[setting] = metrics
        per_image = robustness.get('seconds_per_image', {})
        shown = [f'{k.split("/")[-1]} {fmt(metrics[k])}' for k in keys]
        lines.append(f'| {label} | {setting} | {" | ".join(shown)} | '
                     f'{fmt(metrics.get(f"equivariance/{stage}"))} | {fmt(per_image.get("attack"))} | '
                     f'{fmt(per_image.get("defense"))} |')
    for label, keys in dict.fromkeys((c[0], c[3]) for c in cells):
        summaries += [summary(label, keys[0], results[label], setting) for setting in results[label]
                      if setting.startswith('attacked + defense')]
    text = '\n'.join(lines) + '\n\n' + '\n'.join(summaries)
    report = osp.join(ROOT, args.work_dir, 'report.md')
    links = {name: osp.relpath(osp.join(ROOT, path), osp.dirname(report))
             for name, path in (('robustness', ROBUSTNESS_REPORT), ('benchmark', BENCHMARK))}
    with open(report, 'w') as f:
        f.write('# mmequi demo\n\nAttack: PGD L∞ ε = 4/255, step 1/255, 50 steps, random start, on the undefended '
                f'model. Defense on every image: `{SEG_DEFENSE}` for the segmentors (the flip view, T = 5, then the '
                f'model\'s own TTA merge, `configs/_base_/defenses/{SEG_DEFENSE}.py`) and `{DET_DEFENSE}` for the '
                f'detector (the ×2 view, T = 5, ε_v = 8/255, then the boxes of the image and its mirror fused), '
                f'and `{REFERENCE}` (the '
                'paper\'s reference defaults: K = 8, T = 20, ε_v = 6/255) beside it on the first images of one '
                'model; on the logits (segmentation) or the finest FPN level (detection). '
                'The equivariance score is that of the input the model predicted on (clean, attacked or purified). '
                '"attacked" and "attacked + defense" use the same attacked images (computed once, seeded).\n\n'
                + text + f'\n\nAdaptive attacks (equivariance-aware PGD, BPDA + EOT, full gradient), the baselines and '
                f'the ε / K curves of the Cityscapes-format model: [{ROBUSTNESS_REPORT}]({links["robustness"]}) '
                f'(`make report`). Every defense setting\'s cost and robustness: [{BENCHMARK}]({links["benchmark"]}).\n'
                '\n## Commands\n\n```\n' + '\n'.join(commands) + '\n```\n')
    print('\n' + '\n'.join(lines) + '\n\n' + '\n'.join(summaries) + f'\n\nreport: {report} ({(time.time() - start) / 60:.1f} min)'
          f'\nrobustness report (adaptive attacks, baselines, sweeps): {osp.join(ROOT, ROBUSTNESS_REPORT)}')


def summary(label, key, results, setting):
    """Attack cost, share of it the defense recovers, and the clean-accuracy cost of the defense."""
    clean, attacked = results['clean'][key], results['attacked'][key]
    preset = setting.split('[')[1].rstrip(']')
    defended = results[setting][key]
    clean_defended = results[f'clean + defense [{preset}]'][key]
    cost = clean - attacked
    recovered = (defended - attacked) / cost if cost > 0 else float('nan')
    return (f'- {label}, `{preset}`: the attack costs {cost:.3g} {key} ({100 * cost / clean:.0f} % of clean); the '
            f'defense recovers {100 * recovered:.0f} % of it; clean + defense changes {key} by '
            f'{clean_defended - clean:+.3g}.')


if __name__ == '__main__':
    main()

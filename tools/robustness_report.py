"""Robustness report for one config + checkpoint: a grid of (attack × defense), an ε sweep, a K sweep and a T sweep,
each cell one ``tools/test.py`` run through the normal runner. Resumable: a finished cell (its ``cell.json``) is not
recomputed. Writes ``report.md``, ``cells.csv`` / ``cells.json`` and PNG plots (task metric vs ε per defense, and
vs K). ``--render`` renders them again from ``cells.json`` without running anything.

This tool plans the cells and renders their records; ``mmequi.apis.cells`` runs them (test command, shards,
torchrun, resume) and ``mmequi.evaluation.statistics`` holds the statistics (bootstrap intervals, worst case per
image). Cells made before the equivariance score was normalised (2026-11-27) are refused, with the one-off
conversion to run (``tools/misc/rescale_scores.py``).

    python tools/robustness_report.py CONFIG CHECKPOINT [--work-dir DIR] [--attacks ...] [--defenses ...]
        [--eps 2 4 8] [--attack-steps 50 100] [--num-views 1 2 4 8] [--steps 5 10 20] [--lams 0.1 1 10]
        [--num-images N]
"""
import argparse
import csv
import functools
import glob
import json
import os.path as osp
import sys

import numpy as np

from mmequi.apis.cells import (CellRunner, decimals, load_per_image, needs_defense, old_score_scale, short,
                               task_metric)
from mmequi.apis.config import cfg_options_dict, load_component, load_config
from mmequi.evaluation.box_map import RecordsBoxMAP
from mmequi.evaluation.statistics import (bootstrap_draws, common_images, paired_interval, records_miou, verdict,
                                          worst_per_image)



def convergence_attacks(args):
    """The attacks of the attack-steps sweep: ``--convergence-attacks``, else ``--sweep-attack``."""
    return args.convergence_attacks or [args.sweep_attack]


def longer_run(record):
    """A cell of the attack-steps sweep (same ε, more steps) or of the λ sweep (same ε, another weight of the
    defense's objective) of an adaptive attack against a defense is one more adaptive attack: its display name;
    None for any other cell."""
    if record['defense'] == 'none' or not needs_defense(record['attack']):
        return None
    if record['sweep'] == 'attack_steps':
        return f"{short(record['attack'])}, {record['attack_opts']['steps']} steps"
    if record['sweep'] == 'lambda':  # a λ equal to the attack's own is stored without options
        lam = record['attack_opts'].get('lam', load_component('attack', record['attack']).get('lam'))
        return f"{short(record['attack'])}, λ = {lam:g}"
    return None


def grid(args):
    """Every cell: dict(attack, defense, attack_opts, defense_opts, sweep). An adaptive attack (it attacks the
    defense) has no cell without a defense."""
    skip = {tuple(pair.split(':')) for pair in args.skip}
    cells = [dict(sweep='grid', attack=a, defense=d, attack_opts={}, defense_opts={})
             for a in args.attacks for d in args.defenses
             if (d != 'none' or not needs_defense(a)) and (a, d) not in skip]

    def swept(attack):  # the defenses a sweep of this attack runs on
        return [d for d in (args.sweep_defenses or args.defenses)
                if (d != 'none' or not needs_defense(attack)) and (attack, d) not in skip]
    cells += [dict(sweep='eps', attack=args.sweep_attack, defense=d, attack_opts=dict(eps=e), defense_opts={})
              for e in args.eps for d in swept(args.sweep_attack)]
    cells += [dict(sweep='attack_steps', attack=a, defense=d, attack_opts=dict(steps=n), defense_opts={})
              for a in convergence_attacks(args) for n in args.attack_steps for d in swept(a)]
    cells += [dict(sweep='K', attack=args.sweep_attack, defense=args.sweep_defense, attack_opts={},
                   defense_opts=dict(num_views=k)) for k in args.num_views]
    cells += [dict(sweep='T', attack=args.sweep_attack, defense=args.sweep_defense, attack_opts={},
                   defense_opts=dict(steps=t)) for t in args.steps]
    cells += [dict(sweep='lambda', attack=args.adaptive_attack, defense=args.sweep_defense, attack_opts=dict(lam=v),
                   defense_opts={}) for v in args.lams]
    return [dict(cell, num_images=args.num_images) for cell in cells]


def purifier_settings(defense: dict) -> dict:
    """The purifier's settings of a defense config: its own, or its ``purifier``'s (``PurifiedTTA`` nests them),
    with ``num_views`` (K) counted from ``transforms`` where the views are listed (the purifier then ignores
    ``num_views``)."""
    defense = defense.get('purifier', defense)
    if defense.get('transforms'):
        defense = dict(defense, num_views=len(defense['transforms']))
    return defense


def write_outputs(args, records):
    key = task_metric(records[0])[0]
    rows = []
    for r in records:
        attack = load_component('attack', r['attack']) or {}
        defense = purifier_settings(load_component('defense', r['defense']) or {})
        rows.append(dict(sweep=r['sweep'], attack=short(r['attack']), defense=short(r['defense']),
                         eps=r['attack_opts'].get('eps', attack.get('eps', '')),
                         K=r['defense_opts'].get('num_views', defense.get('num_views', '')),
                         T=r['defense_opts'].get('steps', defense.get('steps', '')),
                         lam=r['attack_opts'].get('lam', attack.get('lam', '')), images=r.get('images', ''),
                         attack_steps=r['attack_opts'].get('steps', attack.get('steps', '')),
                         metric=r['metrics'][key], **{f'equivariance_{s}': r['metrics'].get(f'equivariance/{s}', '')
                                                      for s in ('clean', 'attacked', 'purified')},
                         auc_clean_vs_attacked=r['metrics'].get('equivariance/auc_clean_vs_attacked', ''),
                         seconds_attack=r['seconds_per_image'].get('attack', ''),
                         seconds_defense=r['seconds_per_image'].get('defense', ''),
                         peak_memory_mib=r.get('peak_memory', {}).get('mib', ''), per_image=r.get('per_image')))
    with open(osp.join(args.work_dir, 'cells.json'), 'w') as f:
        json.dump(records, f, indent=2)
    with open(osp.join(args.work_dir, 'cells.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plots = plot(args, rows, key)
    header = ['sweep', 'attack', 'defense', 'ε', 'attack steps', 'K', 'T', 'λ', 'images', key, 'equi. clean', 'equi. attacked',
              'equi. purified', 'AUC clean vs attacked', 's/img attack', 's/img defense', 'peak MiB']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        values = [row[k] for k in ('sweep', 'attack', 'defense', 'eps', 'attack_steps', 'K', 'T', 'lam', 'images',
                                   'metric', 'equivariance_clean', 'equivariance_attacked', 'equivariance_purified',
                                   'auc_clean_vs_attacked', 'seconds_attack', 'seconds_defense', 'peak_memory_mib')]
        lines.append('| ' + ' | '.join(f'{v:.3f}' if isinstance(v, float) else str(v) for v in values) + ' |')
    components = []
    for kind in ('attack', 'defense'):
        names = sorted({r[kind] for r in records if r[kind] != 'none'})
        components.append('\n'.join(f'- `{short(n)}`: `{load_component(kind, n)}`' for n in names) or '- none')
    table = headline(records, key)
    worst = per_image_worst(args, records)
    converging = convergence_table(args, records)
    with open(osp.join(args.work_dir, 'report.md'), 'w') as f:
        f.write(f'# Robustness report\n\nConfig `{args.config}`, checkpoint `{args.checkpoint}`'
                f'{f", first {args.num_images} images" if args.num_images else ""}. Each cell is one '
                '`tools/test.py` run (`cells.json` holds its command). Adaptive attacks attack the defended model; '
                'sweeps change one setting (option overrides in `cells.json`) and keep the others as listed.\n\n'
                + (f'## Headline ({key})\n\n' + '\n'.join(table) + '\n\n' if table else '')
                + ('## Worst case per image\n\nEvery attack against a defense (non-adaptive images sent through '
                   'it, adaptive attacks), per image the worst prediction, against the worst single attack on the '
                   'same images.\n\n' + '\n'.join(worst) + '\n\n' if worst else '')
                + ('## Convergence\n\nThe attack-steps sweep: each step count against the one before on the same '
                   'images.\n\n' + '\n'.join(converging) + '\n\n' if converging else '')
                + '## Attacks\n\n' + components[0] + '\n\n## Defenses\n\n' + components[1] + '\n\n## Cells\n\n'
                + '\n'.join(lines) + '\n\n' + ''.join(f'![{p}]({p})\n' for p in plots))
    return [line for part in (table, worst, converging) if part for line in part + ['']] + lines


def headline(records, key):
    """One row per defense, on the grid's images: clean, clean + defense, each non-adaptive attack on the undefended
    model and its images through the defense (the standard protocol), the worst adaptive attack against the defense
    (lowest metric over the adaptive attacks, the attack-steps sweep's longer runs included, named) and the worst of
    all. Empty without defended cells."""
    metric = {(r['attack'], r['defense']): r['metrics'][key] for r in records if r['sweep'] == 'grid'}
    longer = {}
    for r, name in ((r, longer_run(r)) for r in records):
        if name:
            longer.setdefault(r['defense'], []).append((r['metrics'][key], name))
    attacks = list(dict.fromkeys(a for a, _ in metric))
    defenses = [d for d in dict.fromkeys(d for _, d in metric) if d != 'none']
    plain = [a for a in attacks if a != 'none' and not needs_defense(a)]
    adaptive = [a for a in attacks if needs_defense(a)]
    if not defenses:
        return []
    header = ['defense', 'clean', 'clean + defense']
    for a in plain:
        header += [f'{short(a)} (undefended)', f'{short(a)} → defense']
    header += ['worst adaptive attack', 'worst of all']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]

    digits = decimals(key)

    def cell(a, d):
        return f'{metric[a, d]:.{digits}f}' if (a, d) in metric else '-'

    for d in defenses:
        row = [short(d), cell('none', 'none'), cell('none', d)]
        for a in plain:
            row += [cell(a, 'none'), cell(a, d)]
        tried = [(metric[a, d], short(a)) for a in adaptive if (a, d) in metric] + longer.get(d, [])
        worst = min(tried) if tried else None
        row.append(f'{worst[0]:.{digits}f} ({worst[1]})' if worst else 'not measured')
        everything = [metric[a, d] for a in plain + adaptive if (a, d) in metric] + [v for v, _ in longer.get(d, [])]
        row.append(f'{min(everything):.{digits}f}' if everything else '-')
        lines.append('| ' + ' | '.join(row) + ' |')
    return lines


def convergence_table(args, records, resamples=2000):
    """Every (attack, defense) of the attack-steps sweep, its metric at each step count (the grid's run at the
    attack's own steps included) and the change from the step count before. Segmentation, with per-image class
    areas: a 95 % bootstrap interval over the images (the same resampled images for both runs), "falls" when the whole
    interval lies below 0, so that "does not fall further with 2× more steps" is judged against the noise of a few
    images. Detectors, with per-image boxes: the same interval, each draw re-scored as mmdet's CocoMetric scores a
    run (``RecordsBoxMAP``: mAP is not a sum over images). Otherwise (older cells without those records) the change
    alone."""
    swept = {(r['attack'], r['defense']) for r in records if r['sweep'] == 'attack_steps'}
    runs = {}
    for r in records:
        if r['sweep'] in ('grid', 'attack_steps') and (r['attack'], r['defense']) in swept:
            steps = r['attack_opts'].get('steps', (load_component('attack', r['attack']) or {}).get('steps'))
            runs.setdefault((r['attack'], r['defense']), {})[steps] = r
    if not runs:
        return []
    key = next((task_metric(r)[0] for by in runs.values() for r in by.values() if 'metrics' in r), 'mIoU')
    digits = decimals(key)
    rng = np.random.default_rng(0)  # one stream for the whole table: each pair's draws follow the pair before
    lines = []
    for (attack, defense), by_steps in runs.items():
        records_by_steps = [(n, by_steps[n]) for n in sorted(by_steps)]
        cells = [(n, load_per_image(args.work_dir, r)) for n, r in records_by_steps]
        scorers = per_image_scorers(args, [c for _, c in cells])
        if scorers:
            images = common_images([c for _, c in cells])
            draws = bootstrap_draws(images, resamples, rng)
            # A cell's own figure when it ran on exactly these images, else its figure recomputed on them.
            values = [r['metrics'][key] if key in r.get('metrics', {}) and set(c) == set(images) else score(images)
                      for score, (_, r), (_, c) in zip(scorers, records_by_steps, cells)]
            drawn = [[score(d) for d in draws] for score in scorers]  # each cell once per draw, paired below
            counts = [len(images)] * len(cells)
        else:
            values = [r['metrics'][key] for _, r in records_by_steps]
            counts = [r.get('images', r.get('num_images', '')) for _, r in records_by_steps]
        for i, ((n, cell), value) in enumerate(zip(cells, values)):
            row = [short(attack), short(defense), str(counts[i]), str(n), f'{value:.{digits}f}']
            if i == 0:
                row += ['', '', '']
            elif scorers:
                low, high = paired_interval(drawn[i], drawn[i - 1])
                row += [f'{value - values[i - 1]:+.{digits}f}', f'[{low:+.{digits}f}, {high:+.{digits}f}]',
                        verdict(low, high)]
            else:
                why = 'cells without per-image class areas' if key == 'mIoU' else 'cells without per-image boxes'
                row += [f'{value - values[i - 1]:+.{digits}f}', '–', f'no interval: {why}']
            lines.append('| ' + ' | '.join(row) + ' |')
    header = ['attack', 'defense', 'images', 'steps', key, 'change from the steps before',
              '95 % interval (bootstrap over images)', 'verdict']
    return ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)] + lines


def per_image_scorers(args, cells):
    """Per cell, ``images -> metric`` computed from its per-image records, when every cell has the records it
    needs: mIoU from class areas, a detector's bbox mAP from its boxes (matched once per cell, against the
    annotation file of ``args.config`` with the report's ``--cfg-options``); else None."""
    if not all(cells):
        return None
    if all('class_areas' in m for c in cells for m in c.values()):
        return [functools.partial(records_miou, c) for c in cells]
    if all('bboxes' in m for c in cells for m in c.values()) and getattr(args, 'config', None):
        options = cfg_options_dict(getattr(args, 'cfg_options', None))
        boxes = RecordsBoxMAP.from_config(load_config(args.config, options))
        return [boxes.scored(c).map for c in cells]
    return None


def per_image_worst(args, records):
    """Segmentation: for every defense, the worst case per image over all its attacks (each non-adaptive attack's
    images through the defense, each adaptive attack, the longer runs of the attack-steps sweep), beside the worst
    single attack, on the same images.
    aAcc: the mean over images of each image's lowest pixel accuracy (the image-wise worst prediction). mIoU, when
    every cell keeps per-class areas: SEA's rule, image by image the attack whose prediction lowers the running mIoU
    most. Empty for detectors or without per-image records."""

    def name(r):  # an attack against a defense: a grid cell, or an adaptive attack's longer run; else None
        if r['sweep'] == 'grid' and r['defense'] != 'none' and r['attack'] != 'none':
            return short(r['attack'])
        return longer_run(r)
    attacked = [(n, r) for n, r in ((name(r), r) for r in records) if n]
    lines = []
    for d in dict.fromkeys(r['defense'] for _, r in attacked):
        cells = {n: load_per_image(args.work_dir, r) for n, r in attacked if r['defense'] == d}
        cells = {a: c for a, c in cells.items() if c}
        if len(cells) < 2 or any('aAcc' not in next(iter(c.values())) for c in cells.values()):
            continue
        images = common_images(list(cells.values()))
        worst = worst_per_image(cells, images)
        single, single_acc, worst_acc = worst['accuracy']
        row = [short(d), str(len(images)), str(len(cells)), f'{single_acc:.2f} ({short(single)})',
               f'**{worst_acc:.2f}**']
        if worst['miou']:
            single, single_miou, sea = worst['miou']
            row += [f'{single_miou:.2f} ({short(single)})', f'**{sea:.2f}**']
        else:
            row += ['-', '- (cells without per-class areas)']
        lines.append('| ' + ' | '.join(row) + ' |')
    if not lines:
        return []
    header = ['defense', 'images', 'attacks', 'aAcc, worst single attack (mean per image)',
              'aAcc, worst per image', 'mIoU, worst single attack', 'mIoU, worst per image (SEA rule)']
    return ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)] + lines


def plot(args, rows, key):
    """metric_vs_<sweep>.png: one line per defense (the grid's own point included), clean and undefended-PGD references
    as horizontal lines, the y-axis from 0 (a few points of noise must not look like a trend), legend outside."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    grid = {(r['attack'], r['defense']): r['metric'] for r in rows if r['sweep'] == 'grid'}
    references = [(grid.get(('none', 'none')), 'clean, undefended', dict(color='black', ls='--')),
                  (grid.get((short(args.sweep_attack), 'none')), f'{short(args.sweep_attack)}, undefended',
                   dict(color='gray', ls=':'))]
    converging = convergence_attacks(args)
    labels = {'eps': f'ε of {short(args.sweep_attack)} (pixels of 0–255: 4 = 4/255)',
              'attack_steps': f'steps of {short(converging[0])}' if len(converging) == 1 else 'attack steps',
              'K': 'K (views of the purifier)', 'T': 'T (purifier steps)',
              'lam': f'λ of {short(args.adaptive_attack)}'}
    made = []
    for sweep, x in (('eps', 'eps'), ('attack_steps', 'attack_steps'), ('K', 'K'), ('T', 'T'), ('lambda', 'lam')):
        points = [r for r in rows if r['sweep'] == sweep]
        if not points:
            continue
        if sweep in ('eps', 'attack_steps'):  # the grid ran each swept attack at its own ε and steps
            points += [r for r in rows if r['sweep'] == 'grid'
                       and (r['attack'], r['defense']) in {(p['attack'], p['defense']) for p in points}]
        # Several attacks (the convergence sweep): a colour per defense, a line style per attack, named.
        attacks, defenses = (sorted({r[k] for r in points}) for k in ('attack', 'defense'))
        fig, ax = plt.subplots(figsize=(7 if len(attacks) == 1 else 9, 3.8))
        for attack, defense in sorted({(r['attack'], r['defense']) for r in points}):
            series = sorted({(float(r[x]), r['metric']) for r in points
                             if (r['attack'], r['defense']) == (attack, defense)})
            label = f'{defense} (defended)' if defense != 'none' else 'undefended'
            ax.plot(*zip(*series), marker='o', color=f'C{defenses.index(defense)}',
                    ls=['-', '--', '-.', ':'][attacks.index(attack) % 4],
                    label=f'{attack}: {label}' if len(attacks) > 1 else label)
        for value, label, style in references:
            if value is not None:
                ax.axhline(value, label=label, **style)
        if x == 'lam':
            ax.set_xscale('log')
        if x == 'attack_steps':  # a doubling of the steps is one step to the right, ticks at the steps run
            ax.set_xscale('log', base=2)
            ticks = sorted({float(r[x]) for r in points})
            ax.set_xticks(ticks, [f'{v:g}' for v in ticks])
            ax.minorticks_off()
        top = max([r['metric'] for r in points] + [v for v, _, _ in references if v is not None])
        ax.set_ylim(0, top * 1.08)
        ax.set_xlabel(labels[x])
        ax.set_ylabel(f'{key} (%)' if key == 'mIoU' else key)
        images = points[0].get('images') or args.num_images
        # A figure title spans the legend too: an axes title this long would be clipped at the figure's edge.
        fig.suptitle(f'{key} against {labels[x].split(" (")[0]}{f" ({images} images)" if images else ""}',
                     fontsize=10)
        ax.legend(loc='upper left', bbox_to_anchor=(1.02, 1), fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        name = f'metric_vs_{sweep if sweep != "lambda" else "lambda"}.png'
        fig.savefig(osp.join(args.work_dir, name), dpi=100)
        plt.close(fig)
        made.append(name)
    return made + plot_roc(args, rows)


def plot_roc(args, rows):
    """roc.png: the ROC curve of the equivariance score as a detector of attacked inputs (clean = positive), from the
    per-image scores of every undefended non-adaptive attack cell of the grid."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    curves = []
    for r in rows:
        if r['sweep'] != 'grid' or r['defense'] != 'none' or r['attack'] == 'none' or not r.get('per_image'):
            continue
        with open(osp.join(args.work_dir, r['per_image'])) as f:
            scores = [json.loads(line)['equivariance'] for line in f]
        clean = [s['clean'] for s in scores if 'attacked' in s]
        attacked = [s['attacked'] for s in scores if 'attacked' in s]
        if clean:
            curves.append((r['attack'], clean, attacked))
    if not curves:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    for attack, clean, attacked in curves:
        thresholds = sorted(set(clean + attacked), reverse=True)
        tpr = [0.0] + [sum(c >= t for c in clean) / len(clean) for t in thresholds]
        fpr = [0.0] + [sum(a >= t for a in attacked) / len(attacked) for t in thresholds]
        ax.plot(fpr, tpr, label=f'{attack} ({len(clean)} images)')
    ax.plot([0, 1], [0, 1], color='gray', ls=':', label='chance')
    ax.set_xlabel('attacked images flagged clean (false-positive rate)')
    ax.set_ylabel('clean images flagged clean (true-positive rate)')
    ax.set_title('equivariance score as an attack detector (ROC)')
    ax.legend(loc='lower right', fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(osp.join(args.work_dir, 'roc.png'), dpi=100)
    plt.close(fig)
    return ['roc.png']


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir')
    parser.add_argument('--attacks', nargs='+', default=['none', 'pgd_linf_eps4_50steps'])
    parser.add_argument('--defenses', nargs='+', default=['none', 'equivariance'])
    parser.add_argument('--sweep-attack', default='pgd_linf_eps4_50steps')
    parser.add_argument('--sweep-defense', default='equivariance')
    parser.add_argument('--sweep-defenses', nargs='*', default=[],
                        help='the defenses the ε and attack-steps sweeps run on (default: all of --defenses)')
    parser.add_argument('--eps', nargs='*', type=float, default=[])
    parser.add_argument('--num-views', nargs='*', type=int, default=[])
    parser.add_argument('--steps', nargs='*', type=int, default=[], help='purifier steps (T) sweep')
    parser.add_argument('--attack-steps', nargs='*', type=int, default=[],
                        help='steps sweep of the --convergence-attacks (the metric should not fall further)')
    parser.add_argument('--convergence-attacks', nargs='*', default=[],
                        help='the attacks of the --attack-steps sweep (default: --sweep-attack)')
    parser.add_argument('--adaptive-attack', default='equivariance_aware_pgd_linf_eps4_50steps',
                        help='the attack of the λ sweep')
    parser.add_argument('--lams', nargs='*', type=float, default=[], help='λ sweep of --adaptive-attack')
    parser.add_argument('--skip', nargs='*', default=[], metavar='ATTACK:DEFENSE',
                        help='grid cells not to run (e.g. an adaptive attack that does not fit a baseline)')
    parser.add_argument('--num-images', type=int, help='evaluate the first N images of the test split')
    parser.add_argument('--cfg-options', nargs='+', help='passed on to every tools/test.py run (key=value ...)')
    parser.add_argument('--shard-images', type=int, metavar='S',
                        help='run each cell as resumable shards of S images, merged from their per-image records '
                             "when done (with --num-images; mIoU from class areas, a detector's bbox mAP re-scored "
                             'from its boxes): a long cell survives an interrupted session')
    parser.add_argument('--nproc', type=int, default=1,
                        help='processes per tools/test.py run (torchrun --launcher pytorch: GPUs, or CPU with gloo)')
    parser.add_argument('--render', action='store_true',
                        help="run nothing: render report.md, cells.csv and the plots again from the work dir's "
                        'cells.json (its per-image records), e.g. after the renderer changed')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.shard_images is not None and (args.shard_images < 1 or not args.num_images):
        parser.error(f'--shard-images {args.shard_images}: needs a positive shard size and --num-images (the '
                     'images to split)')
    if args.convergence_attacks and not args.attack_steps:
        parser.error('--convergence-attacks needs --attack-steps (the step counts to run those attacks with)')
    args.work_dir = args.work_dir or osp.join('work_dirs', 'robustness',
                                              osp.splitext(osp.basename(args.config))[0])
    if args.render:
        with open(osp.join(args.work_dir, 'cells.json')) as f:
            records = finished = json.load(f)
    else:
        finished = []
        for done in glob.glob(osp.join(args.work_dir, 'cells', '*', 'cell.json')):
            with open(done) as f:
                finished.append(json.load(f))
    old = old_score_scale(finished)
    if old:  # never mix the two scales of the score in one report (checked before any cell runs)
        sys.exit(f'{len(old)} cells hold equivariance scores of the old scale (sums over view pairs), e.g. {old[0]}: '
                 f'convert the work dir once with `python tools/misc/rescale_scores.py {args.work_dir}`')
    if not args.render:
        try:
            runner = CellRunner(args.config, args.checkpoint, args.work_dir, args.cfg_options, args.nproc,
                                args.shard_images)
        except ValueError as error:
            parser.error(str(error))
        records = runner.run_all(grid(args))
    lines = write_outputs(args, records)
    print('\n' + '\n'.join(lines) + f'\n\nreport: {osp.join(args.work_dir, "report.md")}')
    return records


if __name__ == '__main__':
    main()

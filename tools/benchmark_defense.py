"""Benchmark defense settings side by side: cost (seconds, network passes, peak memory) against robustness.

    python tools/benchmark_defense.py CONFIG CHECKPOINT --settings equivariance equivariance_fast \\
        'equivariance:num_views=1,steps=10' [--num-images N] [--attack pgd_linf_eps4_50steps] \\
        [--adaptive 'bpda_apgd_eot4_linf_eps4_50steps:eot=2,steps=20'] [--work-dir DIR]
    python tools/benchmark_defense.py CONFIG --memory --size 1024 2048 [--num-views 1 4 8]

A setting is a defense name (the shipped ``_base_/defenses``) or config path, optionally with ``:key=value,...``
overrides. Every setting is run clean + defense and attacked + defense on the same images, in one process per cell
(``tools/test.py``, so the figures are those a user gets); the attacked images are computed once and reused
(``--attack-cache``). With ``--adaptive``, every setting is also attacked through itself by that adaptive attack
(an attack name with optional ``:key=value`` overrides, like a setting), the proxy for the worst case a setting is
chosen on: the three axes are then clean + defense, the adaptive attack's result, and cost. Outputs in the work dir:
``benchmark.md``, ``benchmark.csv``, ``pareto.png`` (share of the attack's loss recovered vs seconds per image; with
``--adaptive``, also clean + defense against the adaptive result). Resumable: finished cells are kept.

``--memory`` reports the peak memory of one purifier step (random weights, a random image of ``--size``) for each K,
next to one forward + backward pass of the largest view, each in a fresh process (CUDA: peak allocated; CPU: growth
of the process's peak RSS).
"""
import argparse
import csv
import json
import os
import os.path as osp
import subprocess
import sys

from mmequi.apis.cells import CellRunner, needs_defense, short, task_metric

BASELINE = 'none'


def parse_setting(text):
    """'name[:k=v,k=v]' -> (name, {k: v}) with values read as Python literals where they parse."""
    import ast
    name, _, opts = text.partition(':')
    options = {}
    for pair in filter(None, opts.split(',')):
        key, sep, value = pair.partition('=')
        if not sep:
            raise ValueError(f'setting {text!r}: expected name:key=value,key=value')
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return name, options


def label(name, options):
    return short(name) + (' ' + ' '.join(f'{k}={v}' for k, v in options.items()) if options else '')


def cells_for(args):
    """Baselines first (the attacked one fills the attack cache), then clean + defense, attacked + defense."""
    cache = ['--attack-cache', osp.join(args.work_dir, 'attack_cache')]
    cells = [dict(sweep='baseline', attack='none', defense='none', attack_opts={}, defense_opts={}),
             dict(sweep='baseline', attack=args.attack, defense='none', attack_opts={}, defense_opts={},
                  test_args=cache)]
    for text in args.settings:
        name, options = parse_setting(text)
        cells.append(dict(sweep=label(name, options), attack='none', defense=name, attack_opts={},
                          defense_opts=options))
        cells.append(dict(sweep=label(name, options), attack=args.attack, defense=name, attack_opts={},
                          defense_opts=options, test_args=cache))
        if getattr(args, 'adaptive', None) and text not in (getattr(args, 'no_adaptive', None) or []):
            adaptive, adaptive_opts = parse_setting(args.adaptive)
            cells.append(dict(sweep=label(name, options), attack=adaptive, defense=name, attack_opts=adaptive_opts,
                              defense_opts=options))
    return [dict(cell, num_images=args.num_images) for cell in cells]


def summarise(records):
    """One row per setting: cost and robustness, the share of the attack's loss it recovers; with an adaptive
    attack, its result and the share of the (transferred) attack's loss the setting keeps under it."""
    key = task_metric(records[0])[0]
    clean, attacked = (next(r['metrics'][key] for r in records[:2] if r['attack'] == a) for a in ('none',
                                                                                                  records[1]['attack']))
    share = (lambda value: (value - attacked) / (clean - attacked)) if clean > attacked else (lambda v: float('nan'))
    rows = []
    for setting in dict.fromkeys(r['sweep'] for r in records[2:]):
        pair = {r['attack']: r for r in records if r['sweep'] == setting}
        on_clean, on_attacked = pair.pop('none'), pair.pop(records[1]['attack'])
        adaptive = next(iter(pair.values()), None)  # the one cell left: the adaptive attack through this setting
        seconds = [r['seconds_per_image'].get('defense') for r in (on_clean, on_attacked)]
        passes = on_attacked.get('passes_per_image', {})
        rows.append(dict(setting=setting, images=on_attacked.get('images'), seconds_per_image=sum(seconds) / 2,
                         forward_backward_passes=passes.get('forward_backward', ''),
                         forward_passes=passes.get('forward', ''),
                         peak_memory_mib=max(r.get('peak_memory', {}).get('mib', 0) for r in (on_clean, on_attacked)),
                         clean_defended=on_clean['metrics'][key], attacked_defended=on_attacked['metrics'][key],
                         recovered_share=share(on_attacked['metrics'][key]),
                         adaptive_defended=adaptive['metrics'][key] if adaptive else '',
                         adaptive_kept_share=share(adaptive['metrics'][key]) if adaptive else ''))
    return key, clean, attacked, rows


def write_outputs(args, records):
    key, clean, attacked, rows = summarise(records)
    reference = next((r for r in rows if r['setting'] == label(*parse_setting(args.reference))), rows[0])
    for row in rows:
        row['speedup_vs_reference'] = reference['seconds_per_image'] / row['seconds_per_image']
    with open(osp.join(args.work_dir, 'benchmark.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(osp.join(args.work_dir, 'cells.json'), 'w') as f:
        json.dump(records, f, indent=2)
    adaptive = any(r['adaptive_defended'] != '' for r in rows)
    header = ['setting', 'images', 's/img defense', '× faster than reference', 'fwd+bwd passes/img',
              'fwd passes/img', 'peak MiB', f'clean + defense {key}', f'attacked + defense {key}', 'recovered']
    header += [f'adaptive → defense {key}', 'kept under adaptive'] if adaptive else []
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in rows:
        lines.append(f"| {r['setting']} | {r['images']} | {r['seconds_per_image']:.3f} | "
                     f"{r['speedup_vs_reference']:.1f} | {r['forward_backward_passes']:.1f} | "
                     f"{r['forward_passes']:.1f} | {r['peak_memory_mib']:.0f} | {r['clean_defended']:.2f} | "
                     f"{r['attacked_defended']:.2f} | {100 * r['recovered_share']:.1f} % |"
                     + (f" {r['adaptive_defended']:.2f} | {100 * r['adaptive_kept_share']:.1f} % |"
                        if r['adaptive_defended'] != '' else (' not run | |' if adaptive else '')))
    plot(args, rows, reference)
    attack_seconds = records[1]['seconds_per_image'].get('attack')
    text = (f'# Defense benchmark\n\nConfig `{args.config}`, checkpoint `{args.checkpoint}`, '
            f'{f"first {args.num_images} images" if args.num_images else "all test images"}; attack '
            f'`{args.attack}` on the undefended model (clean {key} {clean:.2f}, attacked {attacked:.2f}, '
            f'{attack_seconds or float("nan"):.2f} s/img), the same attacked images for every setting. Recovered = '
            '(attacked + defense − attacked) / (clean − attacked). Passes are in units of the image\'s area '
            '(a ×2 view counts 4). Peak memory: the cell\'s process peak (CUDA: allocated). Reference: '
            f'`{args.reference}`.'
            + (f' Adaptive: `{args.adaptive}` through each setting; kept = (adaptive → defense − attacked) / '
               '(clean − attacked), the share of the transferred attack\'s loss the setting keeps under it.'
               if adaptive else '') + '\n\n' + '\n'.join(lines) + '\n\n![pareto](pareto.png)\n\nCommand:\n\n```\n'
            + ' '.join(['python', 'tools/benchmark_defense.py', *sys.argv[1:]]) + '\n```\n')
    with open(osp.join(args.work_dir, 'benchmark.md'), 'w') as f:
        f.write(text)
    return lines


def plot(args, rows, reference):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
    adaptive = [r for r in rows if r['adaptive_defended'] != '']
    fig, axes = plt.subplots(1, 2 if adaptive else 1, figsize=(14 if adaptive else 8, 4.8), squeeze=False)
    ax = axes[0, 0]
    for i, r in enumerate(rows, 1):  # numbered points, the settings spelled out in the legend (labels collide)
        style = dict(marker='*', s=180, color='tab:red') if r is reference else dict(marker='o', s=45)
        ax.scatter(r['seconds_per_image'], 100 * r['recovered_share'], zorder=3, label=f'{i}: {r["setting"]}',
                   **style)
        ax.annotate(str(i), (r['seconds_per_image'], 100 * r['recovered_share']), fontsize=8,
                    xytext=(4, 4), textcoords='offset points')
    ax.axvline(reference['seconds_per_image'] / 8, color='grey', ls='--', lw=1, label='1/8 of the reference\'s time')
    ax.axhline(100 * reference['recovered_share'] - 2, color='grey', ls=':', lw=1,
               label='reference − 2 points')
    ax.set_xscale('log')
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FormatStrFormatter('%g'))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 100)
    ax.set_xlabel('defense seconds per image (log scale)')
    ax.set_ylabel("share of the attack's mIoU/AP loss recovered (%)")
    ax.set_title(f'Robustness vs cost of defense settings ({short(args.config)})', fontsize=9)
    ax.grid(alpha=0.3, which='both')
    ax.legend(loc='lower left', fontsize=6.5, framealpha=0.9)
    if adaptive:  # the two accuracy axes a setting is chosen on, each point numbered as on the left
        ax = axes[0, 1]
        for i, r in enumerate(rows, 1):
            if r['adaptive_defended'] == '':
                continue
            style = dict(marker='*', s=180, color='tab:red') if r is reference else dict(marker='o', s=45)
            ax.scatter(r['adaptive_defended'], r['clean_defended'], zorder=3, **style)
            ax.annotate(f"{i} ({r['seconds_per_image']:.2g} s)", (r['adaptive_defended'], r['clean_defended']),
                        fontsize=8, xytext=(4, 4), textcoords='offset points')
        ax.set_xlabel(f'adaptive attack → defense ({args.adaptive})')
        ax.set_ylabel('clean + defense')
        ax.set_title('Clean accuracy against the adaptive worst case (seconds per image in brackets)', fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(osp.join(args.work_dir, 'pareto.png'), dpi=110)
    plt.close(fig)


def memory_benchmark(args):
    height, width = args.size
    rows = []
    for what in ['largest_view'] + [f'step:{k}' for k in args.num_views]:
        for per_view in ([True] if what == 'largest_view' else args.grad_per_view):
            command = [sys.executable, '-m', 'mmequi.apis.memory', args.config, str(height), str(width), what,
                       '--grad-per-view', str(per_view)] + (['--feature', args.feature] if args.feature else [])
            out = subprocess.run(command, capture_output=True, text=True,
                                 env=dict(os.environ, PYTHONWARNINGS='ignore'))
            if out.returncode:
                raise RuntimeError(f'memory probe {what} failed:\n{out.stderr[-2000:]}')
            mib = float(out.stdout.split('MIB')[-1])
            rows.append(dict(what=what, grad_per_view=per_view if what != 'largest_view' else '', mib=mib))
            print(f'{what} grad_per_view={per_view}: {mib:.0f} MiB', flush=True)
    largest = rows[0]['mib']
    lines = ['| measured | grad_per_view | peak MiB | × one fwd+bwd of the largest view |', '|---|---|---|---|']
    lines += [f"| {r['what'].replace('step:', 'purifier step, K = ')} | {r['grad_per_view']} | {r['mib']:.0f} | "
              f"{r['mib'] / largest:.2f} |" for r in rows]
    import torch  # the probes measured on the device this process sees (mmequi.apis.memory picks it the same way)
    device = (f'{torch.cuda.get_device_name()} (CUDA: peak allocated)' if torch.cuda.is_available()
              else 'CPU (growth of the peak RSS)')
    header = (f'`{args.config}`, random weights, one {height}×{width} image, feature `{args.feature}`, on {device}, '
              f'torch {torch.__version__}.')
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'memory.md'), 'w') as f:
        f.write('# Peak memory of one purifier step\n\n' + header + '\n\n' + '\n'.join(lines) + '\n\nCommand:\n\n```\n'
                + ' '.join(['python', 'tools/benchmark_defense.py', *sys.argv[1:]]) + '\n```\n')
    print('\n'.join(lines))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--settings', nargs='+', default=['equivariance'],
                        help="defense settings: NAME or NAME:key=value,key=value (e.g. 'equivariance:steps=5')")
    parser.add_argument('--reference', default='equivariance', help='the setting the speed-up is measured against')
    parser.add_argument('--attack', default='pgd_linf_eps4_50steps')
    parser.add_argument('--adaptive', help="an adaptive attack run through every setting, NAME[:key=value,...] "
                        "(e.g. 'bpda_apgd_eot4_linf_eps4_50steps:eot=2,steps=20'): the worst-case axis")
    parser.add_argument('--no-adaptive', nargs='+', default=[], metavar='SETTING',
                        help='settings (as given to --settings) not attacked by --adaptive (too slow here): their '
                        'adaptive column stays empty, "not run"')
    parser.add_argument('--num-images', type=int, help='evaluate the first N images of the test split')
    parser.add_argument('--cfg-options', nargs='+', help='passed on to every tools/test.py run (key=value ...)')
    parser.add_argument('--work-dir')
    parser.add_argument('--memory', action='store_true', help='peak memory of one purifier step instead')
    parser.add_argument('--size', nargs=2, type=int, default=[1024, 2048], help='--memory: image height width')
    parser.add_argument('--num-views', nargs='+', type=int, default=[1, 4, 8], help='--memory: the K to measure')
    parser.add_argument('--grad-per-view', nargs='+', type=lambda v: v.lower() == 'true', default=[True, False],
                        help='--memory: measure with and/or without the view-by-view gradient')
    parser.add_argument('--feature', default=None, help='--memory: the feature map (default: the wrapper\'s)')
    args = parser.parse_args(argv)
    args.work_dir = args.work_dir or osp.join('work_dirs', 'benchmark', osp.splitext(osp.basename(args.config))[0])
    if args.memory:
        return memory_benchmark(args)
    if not args.checkpoint:
        parser.error('a checkpoint is needed (or --memory)')
    if args.adaptive and not needs_defense(parse_setting(args.adaptive)[0]):
        parser.error(f'--adaptive {args.adaptive}: not an adaptive attack (it does not attack through the defense)')
    unknown = [s for s in args.no_adaptive if s not in args.settings]
    if unknown:
        parser.error(f'--no-adaptive {" ".join(unknown)}: not among --settings {" ".join(args.settings)}')
    os.makedirs(osp.join(args.work_dir, 'cells'), exist_ok=True)
    records = CellRunner(args.config, args.checkpoint, args.work_dir, args.cfg_options).run_all(cells_for(args))
    lines = write_outputs(args, records)
    print('\n' + '\n'.join(lines) + f'\n\nreport: {osp.join(args.work_dir, "benchmark.md")}')
    return records


if __name__ == '__main__':
    main()

"""Evaluation cells: one attack against one defense on one model's test images, run as the test command a user types
(``mmequi.apis.test``, what ``tools/test.py`` runs), resumable, in image shards, on several processes with torchrun. The report and benchmark tools
plan cells and render their records; everything that runs them is here.

A cell is ``dict(attack, defense, attack_opts, defense_opts, sweep, num_images[, test_args])``: component names (the
shipped ``_base_`` files) or paths, ``key: value`` overrides, the planner's label, the first N test images (None:
all) and extra arguments of the test command. Its record is the cell plus the run's figures (``metrics``,
``settings``, ``per_image`` relative to the work dir, ``seconds_per_image``, ``images``, ``peak_memory``,
``passes_per_image``, ``wall_seconds``, ``command``).
"""
import contextlib
import hashlib
import io
import json
import os
import os.path as osp
import subprocess
import sys
import time
import warnings
from typing import List, Optional, Sequence

import numpy as np
from mmengine.registry import DefaultScope
from mmengine.utils import ProgressBar

from mmequi.apis.config import cfg_options_dict, evaluators, load_component, load_config
from mmequi.evaluation.box_map import RecordsBoxMAP
from mmequi.evaluation.robust_records import metrics_from_records
from mmequi.registry import ATTACKS, build

RUN_JSON = 'run.json'  # what a test run leaves for the tool that started it (``--run-json``)
TASK_KEYS = ('mIoU', 'coco/bbox_mAP', 'pascal_voc/mAP')


def short(name: str) -> str:
    """A component's display name: a config file path shows as its file name."""
    return osp.splitext(osp.basename(name))[0]


def task_metric(record: dict) -> tuple:
    """(key, value) of a record's task metric: mIoU, else a detector's mAP."""
    return next((k, record['metrics'][k]) for k in TASK_KEYS if k in record['metrics'])


def decimals(key: str) -> int:
    """Decimals a table gives the task metric: mIoU is in %, a detector's mAP in [0, 1]."""
    return 2 if key == 'mIoU' else 3


def needs_defense(attack: str) -> bool:
    """Whether the attack attacks the defended model (built: an ensemble is adaptive by its ``through_defense``)."""
    cfg = load_component('attack', attack)
    return cfg is not None and getattr(build(ATTACKS, cfg, 'attack'), 'needs_defense', False)


TEST_COMMAND = ['-m', 'mmequi.apis.test']  # the installed test command: runs from any working directory


def cell_name(cell: dict) -> str:
    """Stable directory name of a cell. Options equal to the component's own value are dropped, so the same settings
    in two sweeps (e.g. ε = 4 in the ε sweep and the grid's default ε = 4 attack) share one run."""
    key = {k: cell[k] for k in ('attack', 'defense')}
    for kind in ('attack', 'defense'):
        component = load_component(kind, cell[kind]) or {}
        key[f'{kind}_opts'] = {k: v for k, v in cell[f'{kind}_opts'].items() if component.get(k) != v}
    if cell.get('num_images'):  # a subset run never stands in for a full one
        key['num_images'] = cell['num_images']
    key = json.dumps(key, sort_keys=True)
    names = [short(cell[k]) for k in ('attack', 'defense')]  # names or file paths
    return f'{names[0]}__{names[1]}__{hashlib.sha1(key.encode()).hexdigest()[:8]}'


def run_test(command: Sequence[str], in_process: bool = False, cwd: Optional[str] = None) -> dict:
    """Run one test command line (``['python', 'tools/test.py', CONFIG, ...]`` from a checkout, or ``['python',
    '-m', 'mmequi.apis.test', CONFIG, ...]`` from anywhere, optionally behind ``python -m torch.distributed.run
    ...``) -> what the run wrote for it (``--run-json``, added here): its
    ``log_dir``, ``metrics``, ``robustness`` (robustness.json, or {}), ``per_image`` (the path of per_image.jsonl, or
    None), and ``seconds``. In a fresh process (its peak memory is its own) or, ``in_process``, through
    ``mmequi.apis.test.main`` here (the same run without the start-up; rank 0 of one process)."""
    command = list(command)
    if '--run-json' in command:
        raise ValueError('run_test adds --run-json itself; the command must not have one')
    work_dir = command[command.index('--work-dir') + 1]
    record = osp.join(cwd or os.getcwd(), work_dir, RUN_JSON)
    if osp.isfile(record):
        os.remove(record)  # an earlier attempt's: never read for this run's
    command[command.index('--work-dir') + 2:command.index('--work-dir') + 2] = ['--run-json', record]
    start = time.time()
    if in_process:
        from mmequi.apis.test import main as test_main
        here = os.getcwd()
        try:  # keep the caller's output readable: the runner's log goes to its log file, errors still raise
            os.chdir(cwd or here)
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter('ignore')
                tool = 'tools/test.py' if 'tools/test.py' in command else 'mmequi.apis.test'
                test_main(command[command.index(tool) + 1:])
        finally:
            os.chdir(here)
    else:
        env = dict(os.environ, PYTHONWARNINGS='ignore')  # keep the caller's output readable: errors reach stderr
        subprocess.run([sys.executable, *command[1:]], cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=env)
    if not osp.isfile(record):
        raise RuntimeError(f'{" ".join(command)}: the run wrote no {RUN_JSON} (rank 0 writes it after the test)')
    with open(record) as f:
        return dict(json.load(f), seconds=time.time() - start)


# The CocoMetric that shards can merge (box_map.RecordsBoxMAP re-scores it): bbox only, CocoMetric's own defaults.
COCO_DEFAULTS = dict(metric='bbox', classwise=False, proposal_nums=(100, 300, 1000), iou_thrs=None, metric_items=None,
                     format_only=False, prefix=None, sort_categories=False)


def as_list(value):
    """A config value compared as a list: 'bbox' and ['bbox'], (100, 300) and [100, 300] are the same setting."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def unmergeable(cfg) -> Optional[str]:
    """Why the test metrics of ``cfg`` cannot be merged from per-image records (``metrics_from_records``), or
    None."""
    for kind, evaluator in evaluators(cfg):
        if kind == 'IoUMetric' and list(evaluator.get('iou_metrics', ['mIoU'])) == ['mIoU'] \
                and evaluator.get('nan_to_num') is None or kind == 'EquivarianceMetric':
            continue
        if kind == 'CocoMetric' and evaluator.get('ann_file') \
                and all(as_list(evaluator.get(k, v)) == as_list(v) for k, v in COCO_DEFAULTS.items()) \
                and set(evaluator) <= {'type', '_scope_', 'ann_file', 'backend_args', 'collect_device', 'use_mp_eval',
                                       'outfile_prefix', *COCO_DEFAULTS}:
            continue
        return (f'its test_evaluator {evaluator} is neither IoUMetric with iou_metrics=[\'mIoU\'] nor CocoMetric with '
                "an ann_file and its defaults (metric='bbox', no classwise, proposal_nums, iou_thrs, metric_items, "
                'prefix or sort_categories of its own)')
    return None


def num_classes(cfg) -> int:
    """How many classes IoUMetric counts for the test dataset of ``cfg``: its ``metainfo``, else its class's."""
    from mmseg.registry import DATASETS
    dataset = cfg.test_dataloader.dataset
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None:
        with DefaultScope.overwrite_default_scope('mmseg'):
            classes = DATASETS.get(dataset.type).METAINFO['classes']
    return len(classes)


class CellRunner:
    """Runs cells of one config + checkpoint into ``work_dir/cells/<cell_name>/``, each once: a finished cell (its
    ``cell.json``) is read back, not recomputed.

    Args:
        config, checkpoint: the model, as given to the test command.
        work_dir: the report's directory; records' ``per_image`` paths are relative to it.
        cfg_options: ``key=value`` strings passed to every run.
        nproc: processes per run (torchrun ``--launcher pytorch``: GPUs, or CPU processes with gloo).
        shard_images: run each cell as consecutive shards of this many of its ``num_images`` images, each its own
            resumable run, merged when all are done (per-image randomness follows the image, so the merged cell
            equals the cell run at once; segmentation from the records' class areas, a detector's bbox figures
            re-scored from their boxes). Checked here, before any run.
        in_process: run in this process (``run_test``'s ``in_process``; tests and short demos).
    """

    def __init__(self, config: str, checkpoint: str, work_dir: str, cfg_options: Optional[List[str]] = None,
                 nproc: int = 1, shard_images: Optional[int] = None, in_process: bool = False):
        if nproc < 1:
            raise ValueError(f'nproc={nproc}: needs at least one process')
        if in_process and nproc > 1:
            raise ValueError(f'nproc={nproc} runs torchrun processes; in_process runs one, here')
        self.config, self.checkpoint, self.work_dir = config, checkpoint, work_dir
        self.cfg_options, self.nproc, self.shard_images = list(cfg_options or []), nproc, shard_images
        self.in_process = in_process
        self.num_classes = self.boxes = None
        if shard_images is not None:
            if shard_images < 1:
                raise ValueError(f'shard_images={shard_images}: needs a positive shard size')
            cfg = load_config(config, cfg_options_dict(self.cfg_options))
            why = unmergeable(cfg)
            if why:
                raise ValueError(f'{config}: {why}; shards are merged from per-image records (segmentation: aAcc, '
                                 "mIoU, mAcc; detection: the bbox figures, re-scored from each image's boxes)")
            kinds = [kind for kind, _ in evaluators(cfg)]
            self.num_classes = num_classes(cfg) if 'IoUMetric' in kinds else None
            self.boxes = RecordsBoxMAP.from_config(cfg) if 'CocoMetric' in kinds else None

    def run_all(self, cells: List[dict]) -> List[dict]:
        """Every cell (resumable), with a progress bar; a bad attack/defense name fails before hours of computing."""
        for cell in cells:
            load_component('attack', cell['attack']), load_component('defense', cell['defense'])
            if self.shard_images and not cell.get('num_images'):
                raise ValueError('shards split the first num_images images of a cell; this cell has none: '
                                 f'{cell_name(cell)}')
        os.makedirs(osp.join(self.work_dir, 'cells'), exist_ok=True)
        bar = ProgressBar(len(cells))
        records = []
        for cell in cells:
            records.append(self.run(cell))
            bar.update()
        return records

    def run(self, cell: dict) -> dict:
        """Run (or read back) one cell -> its record."""
        cell_dir = osp.join(self.work_dir, 'cells', cell_name(cell))
        done = osp.join(cell_dir, 'cell.json')
        if osp.isfile(done):
            with open(done) as f:
                return dict(json.load(f), sweep=cell['sweep'])
        if self.shard_images:
            parts = [self.run_shard(cell, osp.join(cell_dir, f'shard-{s[0]}-{s[-1]}'), s)
                     for s in self.shards(cell['num_images'])]
            record = dict(cell, **self.merge(cell_dir, parts))
        else:
            record = dict(cell, **self.run_tool(cell, cell_dir, cell.get('num_images')))
        with open(done, 'w') as f:
            json.dump(record, f, indent=2)
        return record

    def shards(self, num_images: int) -> List[List[int]]:
        """The image indices of each shard of the first ``num_images`` images."""
        return [list(range(i, min(i + self.shard_images, num_images)))
                for i in range(0, num_images, self.shard_images)]

    def run_shard(self, cell: dict, shard_dir: str, indices: List[int]) -> dict:
        """Run (or read back) one shard of a cell -> its ``run_tool`` fields."""
        done = osp.join(shard_dir, 'shard.json')
        if not osp.isfile(done):
            part = self.run_tool(cell, shard_dir, '[' + ','.join(map(str, indices)) + ']')
            with open(done, 'w') as f:
                json.dump(part, f, indent=2)
        with open(done) as f:
            return json.load(f)

    def command(self, cell: dict, run_dir: str, indices) -> List[str]:
        """The test command of a cell on ``test_dataloader.dataset.indices`` (first N, a list, or None: all)."""
        command = ['python', *TEST_COMMAND, self.config, self.checkpoint, '--work-dir', run_dir,
                   '--attack', cell['attack'], '--defense', cell['defense'],
                   *opts_args('--attack-opts', cell['attack_opts']), *opts_args('--defense-opts', cell['defense_opts']),
                   *cell.get('test_args', [])]
        if self.nproc > 1:  # torchrun picks a free port (--standalone); the test tool runs on every rank
            command[1:1] = ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(self.nproc)]
            command += ['--launcher', 'pytorch']
        if not needs_defense(cell['attack']) and cell['attack'] != 'none':  # attacked once, reused by every defense
            command += ['--attack-cache', osp.join(self.work_dir, 'attack_cache')]
        options = list(self.cfg_options)
        if indices is not None:
            options.append(f'test_dataloader.dataset.indices={indices}')
        if options:
            command += ['--cfg-options', *options]
        return command

    def run_tool(self, cell: dict, run_dir: str, indices) -> dict:
        """One test run of a cell -> its figures."""
        command = self.command(cell, run_dir, indices)
        run = run_test(command, in_process=self.in_process)
        robustness = run['robustness']
        return dict(metrics=run['metrics'], settings=robustness.get('settings', {}),
                    per_image=osp.relpath(run['per_image'], self.work_dir) if run['per_image'] else None,
                    seconds_per_image=robustness.get('seconds_per_image', {}), images=robustness.get('images'),
                    peak_memory=robustness.get('peak_memory', {}), wall_seconds=run['seconds'],
                    passes_per_image=robustness.get('passes_per_image', {}), command=' '.join(command))

    def merge(self, cell_dir: str, parts: List[dict]) -> dict:
        """One cell's figures from its shards: the metrics recomputed from the per-image records, the records joined
        in image order (``per_image.jsonl`` in the cell's directory), the costs per image from them, the peak memory
        the largest, the wall time summed."""
        lines = []
        for part in parts:
            with open(osp.join(self.work_dir, part['per_image'])) as f:
                lines += [json.loads(line) for line in f]
        per_image = osp.join(cell_dir, 'per_image.jsonl')
        with open(per_image, 'w') as f:
            f.writelines(json.dumps(line) + '\n' for line in lines)

        def mean_of(field):  # as the hook's robustness.json: each figure over the images that have it
            values = [line[field] for line in lines if line.get(field)]
            keys = dict.fromkeys(k for v in values for k in v)
            return {k: float(np.mean([v[k] for v in values if k in v])) for k in keys}
        memory = max((p['peak_memory'] for p in parts), key=lambda m: m.get('mib', 0))
        keys = list(dict.fromkeys(k for p in parts for k in p['metrics']))  # a shard without any box has no mAP
        return dict(metrics=metrics_from_records(lines, keys, self.num_classes, self.boxes),
                    settings=parts[0]['settings'], per_image=osp.relpath(per_image, self.work_dir),
                    seconds_per_image=mean_of('seconds'), images=len(lines), peak_memory=memory,
                    wall_seconds=sum(p['wall_seconds'] for p in parts), passes_per_image=mean_of('passes'),
                    shards=[p['command'] for p in parts], command=' && '.join(p['command'] for p in parts))


def opts_args(flag: str, opts: dict) -> List[str]:
    return [flag, *[f'{k}={v}' for k, v in opts.items()]] if opts else []


def load_per_image(work_dir: str, record: dict) -> Optional[dict]:
    """{img_path: per-image metrics} of a cell's record, or None when it has no per-image records."""
    if not record.get('per_image') or not osp.isfile(osp.join(work_dir, record['per_image'])):
        return None
    with open(osp.join(work_dir, record['per_image'])) as f:
        return {line['img_path']: line['metrics'] for line in map(json.loads, f)}


def old_score_scale(records: List[dict]) -> List[str]:
    """The cells whose equivariance scores are the sum over view pairs made before 2026-11-27 (not marked
    ``settings.score_scale == 'mean'``): a report must not mix the two scales; ``tools/misc/rescale_scores.py``
    converts a work dir once."""
    return [f"{short(r['attack'])} / {short(r['defense'])}" for r in records  # by name: loads no component
            if any(k.startswith('equivariance/') and not k.startswith('equivariance/auc') for k in r.get('metrics', {}))
            and r.get('settings', {}).get('score_scale') != 'mean']

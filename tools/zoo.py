"""The model-zoo support matrix: one representative config of every model family in mmseg's and mmdet's installed
``configs/`` (random weights, the test bed's data, one small image), run through the two config lines a user adds
(``custom_imports`` + ``RobustTestHook``) with a one-step PGD, the fast preset for one purifier step and the
equivariance score. Each family runs in its own process (a crash or a hang stays there, its registrations too).

    python tools/zoo.py [--families fcn yolox ...] [--codebases mmseg mmdet] [--work-dir work_dirs/zoo]
        [--out docs/zoo] [--timeout 600]

Writes ``<out>/support.json`` (a record per family: config, status, metrics or the error and where it was raised)
and ``<out>/README.md`` (the support table). Resumable: a family whose record is in ``<work-dir>/records`` is not
run again (``--force`` runs it again). ``python tools/zoo.py --one CODEBASE CONFIG WORK_DIR DATA_ROOT`` runs one
config.

Statuses: ``ok`` (the task metric and the equivariance scores came out), ``refused`` (mmequi stopped it when the
wrapper was built, with its message), ``needs`` (the model does not run here without mmequi either, for want of a
package, a GPU-only op or data the test bed has not), ``upstream`` (the model fails without mmequi too, at the small
input and at its config's test size), ``fails`` (a traceback with the hook only: work to do), ``out of scope`` (a folder
of video tracking, re-identification, text-grounded or panoptic-only models, or of dataset/pretraining settings
without a model of their own: the hook evaluates image segmentors and detectors).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
import traceback

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_BED = dict(mmseg=osp.join(ROOT, 'data', 'zoo', 'cityscapes'), mmdet=osp.join(ROOT, 'data', 'zoo', 'coco'))
PREFERRED_DATA = dict(mmseg=('cityscapes', 'ade20k', 'voc'), mmdet=('coco',))
SMALL = ('r18', 'r50', 'tiny', 'nano', 'mit-b0', 'small', '_s_', '-s_', '-t-', '-s-', 'mobilenet', 'b0')
# Folders that hold no image segmentor or detector the hook can evaluate (see the module docstring).
OUT_OF_SCOPE = {
    'mmseg': {'_base_': 'base configs', 'dsdl': 'dataset-description configs of other models', 'mae': 'pretraining'},
    'mmdet': {'_base_': 'base configs', 'common': 'schedules and augmentation recipes of other models',
              'misc': 'dataset-format examples', 'legacy_1.x': 'configs of mmdet 1.x', 'dsdl': 'dataset-description '
              'configs of other models', 'selfsup_pretrain': 'self-supervised backbone pretraining',
              'bytetrack': 'video tracking', 'deepsort': 'video tracking', 'ocsort': 'video tracking',
              'qdtrack': 'video tracking', 'sort': 'video tracking', 'strongsort': 'video tracking',
              'masktrack_rcnn': 'video instance segmentation', 'mask2former_vis': 'video instance segmentation',
              'reid': 're-identification', 'glip': 'text-grounded detection (a language model to download)',
              'grounding_dino': 'text-grounded detection (a language model to download)',
              'mm_grounding_dino': 'text-grounded detection (a language model to download)',
              'panoptic_fpn': 'panoptic segmentation only (the hook scores semantic segmentation and detection)'},
}


def family_configs(codebase):
    """{family: [config paths]} of a codebase's installed configs."""
    root = osp.join(osp.dirname(__import__(codebase).__file__), '.mim', 'configs')
    return {osp.basename(d): sorted(glob.glob(osp.join(d, '**', '*.py'), recursive=True))
            for d in sorted(glob.glob(osp.join(root, '*'))) if osp.isdir(d)}


def representative(codebase, configs):
    """The config a family is run with: a dataset the test bed has a format of, a small model, the plainest name;
    never a TTA or panoptic variant when the family has another. None when every config is panoptic."""
    from mmengine.config import Config
    usable = [c for c in configs if not any(t in osp.basename(c) for t in ('tta', 'panoptic'))] or configs
    preferred = PREFERRED_DATA[codebase]

    def key(path):
        name = osp.basename(path)
        data = next((i for i, d in enumerate(preferred) if d in name), len(preferred))
        return data, not any(s in name for s in SMALL), len(name), name
    for path in sorted(usable, key=key):
        try:
            dataset = Config.fromfile(path).test_dataloader.dataset
        except Exception:  # noqa: BLE001  (a config that does not load is run, and its error recorded)
            return path
        while 'dataset' in dataset:
            dataset = dataset.dataset
        if 'Panoptic' not in str(dataset.get('type')):
            return path
    return None


def plan(codebases, families=None):
    rows = []
    for codebase in codebases:
        for family, configs in family_configs(codebase).items():
            if families and family not in families:
                continue
            reason = OUT_OF_SCOPE[codebase].get(family)
            config = None if reason else representative(codebase, configs)
            if config is None and not reason:
                reason = 'panoptic segmentation only (the hook scores semantic segmentation and detection)'
            rows.append(dict(codebase=codebase, family=family, config=config, reason=reason))
    return rows


def run_family(row, work_dir, timeout, python=sys.executable):
    """One family in a fresh process -> its record."""
    if row['reason']:
        return dict(row, status='out of scope', error=row['reason'])
    run_dir = osp.abspath(osp.join(work_dir, 'runs', f"{row['codebase']}-{row['family']}"))
    out = osp.join(run_dir, 'result.json')
    if osp.isfile(out):
        os.remove(out)
    start = time.time()
    try:
        done = subprocess.run([python, osp.abspath(__file__), '--one', row['codebase'], row['config'], run_dir,
                               TEST_BED[row['codebase']]],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env=dict(os.environ, PYTHONWARNINGS='ignore', CUDA_VISIBLE_DEVICES=''))
        log = done.stderr[-4000:]
    except subprocess.TimeoutExpired:
        return dict(row, status='fails', error=f'no result within {timeout} s', seconds=timeout)
    if not osp.isfile(out):
        if done.returncode == -9:  # the kernel's out-of-memory killer
            return dict(row, status='needs', error=needs('killed'), seconds=time.time() - start)
        last = log.strip().splitlines()[-1] if log.strip() else ''
        return dict(row, status='fails', error=f'the process ended without a result (exit {done.returncode})'
                    + (f': {last}' if last else ''), seconds=time.time() - start)
    with open(out) as f:
        return dict(row, **json.load(f), seconds=time.time() - start)


# ---- one config, in its own process ------------------------------------------------------------------------------
def small_test_data(cfg, codebase, data_root, small=True):
    """The config's test split replaced by one image of the test bed (the config's own test pipeline, its resize
    brought down to a small image when ``small``), with the evaluator of that format."""
    loader = cfg.test_dataloader
    dataset = loader.dataset
    while 'dataset' in dataset:  # wrappers (RepeatDataset, ConcatDataset of one)
        dataset = dataset.dataset
    pipeline = [dict(step) for step in dataset.get('pipeline', [])]
    for step in pipeline:
        kind = str(step.get('type', ''))
        if small and kind in ('Resize', 'mmdet.Resize', 'RandomResize', 'FixScaleResize') and 'scale' in step:
            step.update(scale=(320, 160) if codebase == 'mmseg' else (320, 192), keep_ratio=True)
        if kind.endswith('LoadAnnotations') and 'reduce_zero_label' in step:
            step['reduce_zero_label'] = False
        if kind == 'LoadAnnotations' and codebase == 'mmdet':
            step['with_seg'] = False  # the test bed's COCO format has boxes and polygons, no stuff maps
    if not any(str(step.get('type', '')).endswith('LoadAnnotations') for step in pipeline):
        # What the hook's message asks for (FPG's test pipeline loads no boxes): the annotations, after the resize
        # as in mmdet's and mmseg's test pipelines, before the packing step.
        masks = 'mask' in str(cfg.model.get('roi_head', '')) or 'mask_head' in cfg.model
        pipeline.insert(len(pipeline) - 1, dict(type='LoadAnnotations', **({} if codebase == 'mmseg' else
                                                                          dict(with_bbox=True, with_mask=masks))))
    if codebase == 'mmseg':
        new = dict(type='CityscapesDataset', data_root=data_root,
                   data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'), pipeline=pipeline,
                   indices=1, test_mode=True)
        evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
    else:
        new = dict(type='CocoDataset', data_root=data_root, ann_file='annotations/instances_val2017.json',
                   data_prefix=dict(img='val2017/'), pipeline=pipeline, indices=1, test_mode=True)
        evaluator = dict(type='CocoMetric', ann_file=osp.join(data_root, 'annotations', 'instances_val2017.json'),
                         metric='bbox')
    cfg.test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
                               sampler=dict(type='DefaultSampler', shuffle=False), dataset=new)
    cfg.test_evaluator = evaluator


def set_key(node, name, value):
    """Every ``name`` key (with a number) under a config node set to ``value``."""
    if isinstance(node, dict):
        for key in list(node):
            if key == name and isinstance(node[key], (int, float)):
                node[key] = value
            else:
                set_key(node[key], name, value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            set_key(item, name, value)


def set_classes(node, num_classes):
    """Every ``num_classes`` of the model config set to the test bed's (the metric's class list)."""
    set_key(node, 'num_classes', num_classes)


def drop_pretrained(node):
    """Every ``init_cfg`` (or ``pretrained``) that loads a checkpoint removed: the zoo downloads nothing; the rest of
    the initialisation stays."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and (init.get('type') == 'Pretrained' or 'checkpoint' in init):
            node['init_cfg'] = None
        if isinstance(node.get('pretrained'), str):  # the segmentors' older spelling of the same
            node['pretrained'] = None
        for value in node.values():
            drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            drop_pretrained(item)


def run_one(codebase, config, work_dir, data_root, hook=True, small=True):
    """Load the family's config, add the two config lines (``hook``), run the test on one image of the test bed at the
    zoo's small size (``small``) or at the config's own test size: the metrics that came out."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    # The two config lines (README) in a leaf config of the family's, with the attack and defense at its top level as
    # the shipped _base_ files state them; the hook joins the config's own custom hooks.
    os.makedirs(work_dir, exist_ok=True)
    leaf = osp.join(work_dir, 'robust_' + osp.basename(config))
    with open(leaf, 'w') as f:
        f.write(f"_base_ = [{config!r}]\n"
                + ("custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)\n"
                   "attack = dict(type='PGD', eps=4, step_size=1, steps=1)\n"
                   "defense = dict(type='EquivariancePurifier', num_views=1, steps=1, max_view_area=1.0, eps=6, "
                   "step_size=255)\n" if hook else ''))
    cfg = Config.fromfile(leaf)
    if hook:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(type='RobustTestHook', seed=0)]
    cfg.work_dir = work_dir
    cfg.load_from = None  # random weights: the model's own initialisation, without the pretrained backbone
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=0)
    small_test_data(cfg, codebase, data_root, small)
    set_classes(cfg.model, 19 if codebase == 'mmseg' else 80)
    # Random weights score low and embed corners at random: keep their boxes, so that the metric has some to score.
    set_key(cfg.model.get('test_cfg'), 'score_thr', 0.0)
    set_key(cfg.model.get('test_cfg'), 'distance_threshold', 1e9)  # CornerNet, CentripetalNet
    drop_pretrained(cfg.model)
    cfg.default_hooks.pop('visualization', None)
    runner = Runner.from_cfg(cfg)
    init_error = None
    try:
        runner.model.init_weights()  # PyTorch's defaults alone let deep stacks (DetectoRS' RFP) overflow to NaN
    except (AttributeError, TypeError) as error:  # an init that does not run outside its codebase's training (SAN)
        init_error = f'{type(error).__name__}: {error}'
        runner.logger.warning(f"the model's init_weights failed ({error}): PyTorch's default initialisation")
    metrics = runner.test()
    return {k: float(v) for k, v in metrics.items()}, init_error


STAGES = ('equivariance/clean', 'equivariance/attacked', 'equivariance/purified')


def one(codebase, config, work_dir, data_root):
    """Write the family's record (:func:`outcome`) to ``<work_dir>/result.json``."""
    result = outcome(codebase, config, work_dir, data_root)  # its runs make the directory
    with open(osp.join(work_dir, 'result.json'), 'w') as f:
        json.dump(result, f, indent=2)


def outcome(codebase, config, work_dir, data_root):
    """The family's record. A failure is checked without mmequi: a model that fails at the zoo's small input on its
    own runs again at its config's test size; one that fails without mmequi at that size too is the codebase's or
    the environment's failure, not the hook's."""
    hooked = attempt(codebase, config, work_dir, data_root)
    if hooked['status'] == 'ok':
        return hooked
    need = needs(hooked['error'])
    if need:  # a package only the attack's loss imports (PAA: sklearn)
        return dict(hooked, status='needs', error=need)
    if attempt(codebase, config, osp.join(work_dir, 'plain'), data_root, hook=False)['status'] == 'ok':
        return hooked
    hooked = dict(attempt(codebase, config, osp.join(work_dir, 'full'), data_root, small=False),
                  input='config test size')
    if hooked['status'] == 'ok':
        return hooked
    plain = attempt(codebase, config, osp.join(work_dir, 'plain-full'), data_root, hook=False, small=False)
    if plain['status'] == 'ok':
        return hooked
    need = needs(plain['error'])
    return dict(plain, status='needs' if need else 'upstream', input='both sizes', error=need or plain['error'])


def detections(work_dir):
    """The number of boxes the detector predicted per image, from the run's per-image records."""
    for path in glob.glob(osp.join(work_dir, '*', 'per_image.jsonl')):
        with open(path) as f:
            return [json.loads(line)['metrics'].get('detections', 0) for line in f if line.strip()]
    return [1]


def needs(error):
    """What the environment lacks, read from an error: a package, a CUDA-only mmcv op, the precomputed proposals a
    Fast R-CNN reads, a process group, a download, memory; None for any other error."""
    import re
    if 'implementation for device cpu not found' in error:
        return f"a GPU: mmcv's {error.split(':')[1].strip().split('_forward')[0]} op has no CPU kernel"
    if 'pip install -r requirements/optional.txt' in error:
        return "mmseg's optional packages (requirements/optional.txt), not installed here"
    package = (re.search(r"No module named '([\w.]+)'", error) or re.search(r"'(mmpretrain)\.", error)
               or re.search(r'(\w+) is not installed', error) or re.search(r'pip install ([\w-]+)', error))
    if package:
        return f'the {package.group(1)} package, not installed here'
    if 'Default process group has not been initialized' in error:
        return 'a distributed launch: its SyncBN layers need a process group'
    if error.startswith('URLError'):
        return 'a download (the config loads a checkpoint from the internet)'
    if error.startswith('killed'):
        return f"more memory than this machine's {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} " \
               'GiB (the process was killed)'
    if error.startswith("KeyError: 'proposals'"):
        return 'precomputed proposals (a proposal file the test bed does not have)'
    return None


def attempt(codebase, config, work_dir, data_root, hook=True, small=True):
    """One run -> {'status': 'ok' | 'refused' | 'fails', 'metrics' | 'error', 'raised_at', 'trace'}."""
    try:
        metrics, init_error = run_one(codebase, config, work_dir, data_root, hook, small)
        task = [k for k in metrics if k in ('mIoU', 'coco/bbox_mAP')]
        scores = all(metrics.get(k, float('nan')) == metrics.get(k) for k in STAGES) or not hook  # present, not NaN
        if hook and init_error and all(k in metrics for k in STAGES) and not scores:
            return dict(status='upstream', metrics=metrics, error=f"NaN at random weights: the model's init_weights "
                        f'fails in its codebase ({init_error}), and PyTorch\'s default initialisation computes NaN')
        if task and scores:
            return dict(status='ok', metrics=metrics)
        if scores and hook and codebase == 'mmdet' and not any(detections(work_dir)):
            return dict(status='ok', metrics=metrics, note='no box at random weights: the COCO metric had none '
                        'to score')
        return dict(status='fails', metrics=metrics, error='the run ended without its task metric or the '
                    'equivariance scores')
    except Exception as error:  # noqa: BLE001  (the matrix records every failure)
        frames = traceback.extract_tb(error.__traceback__)
        where = frames[-1]
        ours = osp.join('mmequi', '') in where.filename and 'site-packages' not in where.filename
        first_line = f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'
        mmequi_frames = [f for f in frames[:-8] if osp.join('mmequi', '') in f.filename]  # above the last 8
        return dict(status='refused' if ours and isinstance(error, ValueError) else 'fails', error=first_line,
                    raised_at=f'{shorten(where.filename)}:{where.lineno}',
                    trace=[f'{shorten(f.filename)}:{f.lineno} {f.name}' for f in mmequi_frames[-4:] + frames[-8:]])


def shorten(path):
    for marker in ('site-packages/', ROOT + '/'):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# ---- the table -------------------------------------------------------------------------------------------------
def record_path(records_dir, row):
    return osp.join(records_dir, f"{row['codebase']}-{row['family']}.json")


def collect(rows, records_dir):
    """A record for every family of the plan: its run's, or 'not run yet' (the table leaves no family out)."""
    records = []
    for row in rows:
        path = record_path(records_dir, row)
        if osp.isfile(path):
            with open(path) as f:
                records.append(json.load(f))
        elif row['reason']:
            records.append(dict(row, status='out of scope', error=row['reason']))
        else:
            records.append(dict(row, status='not run yet', error=''))
    return records


MARKS = {'ok': '✓', 'refused': 'refused', 'needs': 'needs', 'upstream': '✗ without mmequi too',
         'fails': '✗ fails', 'out of scope': 'out of scope', 'not run yet': 'not run yet'}


def render(records, out):
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, 'support.json'), 'w') as f:
        json.dump(records, f, indent=2)
    counts = {s: sum(r['status'] == s for r in records) for s in MARKS}
    lines = ['| codebase | family | config run | status | result |', '|---|---|---|---|---|']
    for r in records:
        config = osp.basename(r['config']) if r.get('config') else '–'
        if r['status'] == 'ok':
            key = 'mIoU' if 'mIoU' in r['metrics'] else 'coco/bbox_mAP'
            task = r['note'] if r.get('note') else f"{key} {r['metrics'][key]:.2f}"
            result = f"{task}, equivariance/clean {r['metrics'].get('equivariance/clean', 0):.3f}"
            if r.get('input') == 'config test size':
                result += " (at the config's test size: the model alone fails at the zoo's small input)"
        elif r['status'] == 'needs':
            result = r['error']
        else:
            result = r.get('error', '').replace('|', '\\|')[:160] + (f" (`{r['raised_at']}`)" if r.get('raised_at')
                                                                        else '')
        mark = MARKS[r['status']]
        lines.append(f"| {r['codebase']} | {r['family']} | `{config}` | {mark} | {result} |")
    text = ('# Model-zoo support matrix\n\nGenerated by `python tools/zoo.py` (`make zoo`): one config per family of '
            "mmseg's and mmdet's installed `configs/`, random weights, one image of the test bed (`data/zoo`, the "
            'Cityscapes format for segmentors and the COCO format for detectors) at about 320×160, the two config '
            'lines (`custom_imports` + `RobustTestHook`), PGD for one step, the fast preset for one purifier step '
            'and the equivariance score. A family passes (✓) when its task metric and the scores come out. A family '
            'that fails runs again without mmequi: a model that fails at the small image on its own runs at its '
            "config's test size, and one that fails without mmequi at both sizes is marked `needs` (what this "
            'machine lacks) or `✗ without mmequi too`. Random weights (the model\'s own initialisation, no '
            'pretrained backbone) and small inputs say that the code paths run, not how robust a trained model is; '
            'the real sizes need a GPU.\n\n'
            + ', '.join(f'{n} {s}' for s, n in counts.items()) + '\n\n' + '\n'.join(lines) + '\n')
    with open(osp.join(out, 'README.md'), 'w') as f:
        f.write(text)
    return counts


def prepare_data():
    """The test bed's data for the zoo: one Cityscapes-format and one COCO-format split, the COCO annotation file
    listing all 80 COCO categories (the zoo's detectors predict any of them; the images hold six)."""
    for name, codebase in (('cityscapes', 'mmseg'), ('coco', 'mmdet')):  # the test bed runs from the checkout's root
        subprocess.run([sys.executable, '-m', 'testbed', name, '--out-dir', osp.dirname(TEST_BED[codebase]),
                        '--num-train', '1', '--num-val', '1'], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    from mmdet.datasets import CocoDataset
    ann = osp.join(TEST_BED['mmdet'], 'annotations', 'instances_val2017.json')
    with open(ann) as f:
        coco = json.load(f)
    names = CocoDataset.METAINFO['classes']
    known = {c['name']: c['id'] for c in coco['categories']}
    ids = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]  # COCO's 80 ids
    coco['categories'] = [dict(id=known.get(name, i), name=name, supercategory='') for name, i in zip(names, ids)]
    with open(ann, 'w') as f:
        json.dump(coco, f)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--one', nargs=4, metavar=('CODEBASE', 'CONFIG', 'WORK_DIR', 'DATA_ROOT'))
    parser.add_argument('--codebases', nargs='+', default=['mmseg', 'mmdet'], choices=['mmseg', 'mmdet'])
    parser.add_argument('--families', nargs='+')
    parser.add_argument('--work-dir', default='work_dirs/zoo')
    parser.add_argument('--out', default='docs/zoo')
    parser.add_argument('--timeout', type=int, default=600, help='seconds one family may take')
    parser.add_argument('--force', action='store_true', help='run families that have a record again')
    parser.add_argument('--render', action='store_true', help='run nothing: the table from the records there are')
    args = parser.parse_args(argv)
    if args.one:
        return one(*args.one)
    rows = plan(args.codebases, args.families)
    unknown = sorted(set(args.families or []) - {r['family'] for r in rows})
    if unknown:
        parser.error(f'--families {" ".join(unknown)}: no such folder in the configs of {" ".join(args.codebases)}')
    records_dir = osp.join(args.work_dir, 'records')
    if args.render:
        print(render(collect(plan(args.codebases), records_dir), args.out))
        return
    prepare_data()
    os.makedirs(records_dir, exist_ok=True)
    for i, row in enumerate(rows, 1):
        path = record_path(records_dir, row)
        if args.force or not osp.isfile(path):
            record = run_family(row, args.work_dir, args.timeout)
            with open(path, 'w') as f:
                json.dump(record, f, indent=2)
        with open(path) as f:
            record = json.load(f)
        print(f"[{i}/{len(rows)}] {row['codebase']} {row['family']}: {record['status']} "
              f"{record.get('error', '')[:120]}", flush=True)
    counts = render(collect(plan(args.codebases), records_dir), args.out)
    print(counts)


if __name__ == '__main__':
    main()

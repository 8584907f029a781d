# Two commands do all set-up on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
PYTEST_ARGS ?=
DEMO_ARGS ?=
# make demo runs its cells in this many processes side by side (2 on this 2-core machine: 9.6 min, docs/results.md).
DEMO_WORKERS ?= 2

.PHONY: install deps data demo headline report benchmark benchmark-val zoo test break-check clean

# Installs only when something is missing (tools/check_env.py decides; a no-op takes a second).
install:
	@$(PYTHON) tools/check_env.py >/dev/null 2>&1 || $(MAKE) --no-print-directory deps

# torch first (mmcv builds against it); mmcv 2.1.0 with its compiled ops, from a wheel in PIP_FIND_LINKS when one
# is offered, else built from source (about 20 min on 2 cores; pip caches the result). No build isolation:
# under isolation there is no torch and mmcv silently builds without ops.
deps:
	$(PYTHON) tools/check_env.py || true
	$(PIP) install "torch>=2.1,<2.14" "setuptools>=77.0.3,<81" wheel
	MMCV_WITH_OPS=1 $(PIP) install --no-build-isolation "mmcv==2.1.0"
	$(PIP) install --no-build-isolation -e ".[tests]"
	# Tests only: torchattacks' PGD, MIM and APGD are the references the attacks are compared with. Without its
	# dependencies: it pins an old requests and pulls torchvision (and with it another torch); its attacks need neither.
	$(PIP) install --no-deps "torchattacks==3.5.1"
	$(PYTHON) tools/check_env.py

data: install
	$(PYTHON) -m testbed all

demo: data
	$(PYTHON) tools/demo.py --workers $(DEMO_WORKERS) $(DEMO_ARGS)

# The robustness report of the Cityscapes-format demo model (docs/robustness/README.md): hours on 2 cores.
# Resumable: an interrupted run skips the cells it finished. Each part's report.md, cells and plots land in
# docs/robustness/<part>/.
REPORT := $(PYTHON) tools/robustness_report.py configs/demo/fcn_r18-d8_synthetic-cityscapes.py \
	checkpoints/fcn_r18-d8_synthetic-cityscapes.pth
ROTATION := configs/demo/defenses/rotation_fcn_r18-d8_synthetic-cityscapes.py
# A part's report, cells, plots and per-image records (JSON lines) into docs/robustness/<part>/.
publish = rm -rf docs/robustness/$(1)/cells && mkdir -p docs/robustness/$(1) && cp work_dirs/report/$(1)/report.md work_dirs/report/$(1)/cells.* \
	docs/robustness/$(1)/ && (cp work_dirs/report/$(1)/*.png docs/robustness/$(1)/ 2>/dev/null || true) && \
	(cd work_dirs/report/$(1) && find cells -name per_image.jsonl -exec cp --parents {} ../../../docs/robustness/$(1)/ \;)
# The headline: every defense (the fast preset, the invariance and rotation baselines at its budget, random noise, the
# reference defaults)
# against PGD, the SEA-style ensemble and the adaptive attacks on the same 20 images, with the sanity sweeps
# (ε = 32/255, and 2×, 4× and 8× the steps of BPDA + APGD with one and with 4 draws per step, on the fast preset and
# random noise); the COCO-format detector against PGD, APGD and the adaptive attacks on 20 images; the model's own
# test-time augmentation (the tta defense) on the same 20 Cityscapes-format images (about 1 h); the detector's own
# flip TTA (boxes merged by NMS, and fused) and the detectors' preset on the COCO-format 20 (coco-tta-20); the
# reference defaults (equivariance) through the headline's attacks (their adaptive cells 1.5 to 5 h each here). About
# 20 h here, resumable: cell by cell and, in shards of 2 or 4 images, within a cell.
HEADLINE_ATTACKS := none pgd_linf_eps4_50steps sea_linf_eps4_100steps equivariance_aware_pgd_linf_eps4_50steps \
	bpda_apgd_eot1_linf_eps4_50steps sea_bpda_eot1_linf_eps4_25steps bpda_apgd_eot4_linf_eps4_50steps
ROTATION_FAST := configs/demo/defenses/rotation_fast_fcn_r18-d8_synthetic-cityscapes.py
HEADLINE_DEFENSES := none equivariance_fast invariance_fast $(ROTATION_FAST) random_noise equivariance
# Processes per cell (torchrun: one per GPU, or CPU processes with gloo; on 2 CPU cores NPROC=2 is about 1.25x faster).
NPROC ?= 1
COCO_ATTACKS := none pgd_linf_eps4_50steps apgd_linf_eps4_50steps equivariance_aware_pgd_linf_eps4_50steps \
	bpda_apgd_eot1_linf_eps4_50steps bpda_apgd_eot4_linf_eps4_50steps
# The adversarially fine-tuned demo FCN (issue #26) on the same 20 images: alone, with the fast preset, the reference
# (transferred attacks only: its adaptive cells are hours per cell here) and the segmentors' shipped preset; EOT-4's
# steps doubled once on both presets (flat on flip + TTA; a further doubling where a preset's is not).
ADV := configs/demo/fcn_r18-d8_synthetic-cityscapes_adv-pgd-eps4.py checkpoints/fcn_r18-d8_synthetic-cityscapes_adv-pgd-eps4.pth
ADV_ATTACKS := none pgd_linf_eps4_50steps apgd_linf_eps4_50steps sea_linf_eps4_100steps \
	equivariance_aware_pgd_linf_eps4_50steps bpda_apgd_eot1_linf_eps4_50steps sea_bpda_eot1_linf_eps4_25steps \
	bpda_apgd_eot4_linf_eps4_50steps
ADV_SKIP := $(foreach a,equivariance_aware_pgd_linf_eps4_50steps bpda_apgd_eot1_linf_eps4_50steps \
	sea_bpda_eot1_linf_eps4_25steps bpda_apgd_eot4_linf_eps4_50steps,$(a):equivariance) \
	$(foreach a,equivariance_aware_pgd_linf_eps4_50steps bpda_apgd_eot1_linf_eps4_50steps \
	sea_bpda_eot1_linf_eps4_25steps,$(a):equivariance_flip_tta)
headline: data
	$(REPORT) --work-dir work_dirs/report/cityscapes-headline-20 --num-images 20 --attacks $(HEADLINE_ATTACKS) \
		--defenses $(HEADLINE_DEFENSES) --skip equivariance_aware_pgd_linf_eps4_50steps:random_noise --shard-images 2 \
		--sweep-attack bpda_apgd_eot1_linf_eps4_50steps --sweep-defense equivariance_fast \
		--sweep-defenses equivariance_fast random_noise --eps 32 --attack-steps 100 200 400 --nproc $(NPROC) \
		--convergence-attacks bpda_apgd_eot1_linf_eps4_50steps bpda_apgd_eot4_linf_eps4_50steps
	$(PYTHON) tools/robustness_report.py $(DEMO_COCO) --work-dir work_dirs/report/coco-headline-20 --num-images 20 \
		--attacks $(COCO_ATTACKS) --defenses none equivariance_fast random_noise \
		--skip equivariance_aware_pgd_linf_eps4_50steps:random_noise \
		--sweep-attack bpda_apgd_eot1_linf_eps4_50steps --sweep-defense equivariance_fast --eps 32 --attack-steps 100 200 \
		--convergence-attacks bpda_apgd_eot1_linf_eps4_50steps bpda_apgd_eot4_linf_eps4_50steps --shard-images 4 \
		--nproc $(NPROC)
	$(REPORT) --work-dir work_dirs/report/cityscapes-tta-20 --num-images 20 --attacks none pgd_linf_eps4_50steps \
		sea_linf_eps4_100steps bpda_eot1_linf_eps4_20steps bpda_apgd_eot1_linf_eps4_50steps \
		sea_bpda_eot1_linf_eps4_25steps --defenses none tta --sweep-attack bpda_apgd_eot1_linf_eps4_50steps \
		--sweep-defense tta --sweep-defenses tta --attack-steps 100 200 400 \
		--convergence-attacks bpda_apgd_eot1_linf_eps4_50steps --shard-images 4 --nproc $(NPROC)
	$(REPORT) --work-dir work_dirs/report/cityscapes-flip-tta-20 --num-images 20 --attacks none pgd_linf_eps4_50steps \
		bpda_apgd_eot1_linf_eps4_50steps bpda_apgd_eot4_linf_eps4_50steps sea_linf_eps4_100steps \
		equivariance_aware_pgd_linf_eps4_50steps sea_bpda_eot1_linf_eps4_25steps --defenses none equivariance_flip_tta \
		--shard-images 4 --sweep-attack bpda_apgd_eot1_linf_eps4_50steps --sweep-defense equivariance_flip_tta \
		--sweep-defenses equivariance_flip_tta --attack-steps 100 200 400 \
		--convergence-attacks bpda_apgd_eot4_linf_eps4_50steps --nproc $(NPROC)
	$(PYTHON) tools/robustness_report.py $(ADV) --work-dir work_dirs/report/cityscapes-adv-headline-20 --num-images 20 \
		--attacks $(ADV_ATTACKS) --defenses none equivariance_fast equivariance equivariance_flip_tta \
		--skip $(ADV_SKIP) --shard-images 4 --sweep-attack bpda_apgd_eot1_linf_eps4_50steps \
		--sweep-defense equivariance_fast --sweep-defenses equivariance_fast equivariance_flip_tta --eps 32 \
		--attack-steps 100 --convergence-attacks bpda_apgd_eot4_linf_eps4_50steps --nproc $(NPROC)
	$(PYTHON) tools/robustness_report.py $(DEMO_COCO) --work-dir work_dirs/report/coco-tta-20 --num-images 20 \
		--attacks none pgd_linf_eps4_50steps apgd_linf_eps4_50steps bpda_apgd_eot1_linf_eps4_50steps \
		bpda_apgd_eot4_linf_eps4_50steps --defenses none tta_flip tta_flip_wbf equivariance_fast_eps8_flip_wbf \
		--skip bpda_apgd_eot4_linf_eps4_50steps:none bpda_apgd_eot1_linf_eps4_50steps:none \
		bpda_apgd_eot4_linf_eps4_50steps:tta_flip bpda_apgd_eot4_linf_eps4_50steps:tta_flip_wbf \
		--sweep-defenses tta_flip tta_flip_wbf equivariance_fast_eps8_flip_wbf --attack-steps 100 200 \
		--convergence-attacks bpda_apgd_eot1_linf_eps4_50steps bpda_apgd_eot4_linf_eps4_50steps --shard-images 4 \
		--nproc $(NPROC)
	$(call publish,cityscapes-headline-20)
	$(call publish,coco-headline-20)
	$(call publish,cityscapes-tta-20)
	$(call publish,cityscapes-flip-tta-20)
	$(call publish,cityscapes-adv-headline-20)
	$(call publish,coco-tta-20)

# The model-zoo support matrix (docs/zoo/README.md): one config of every family of mmseg's and mmdet's installed
# configs, random weights, one small test-bed image, through the two config lines. About 1.5 h on 2 cores; resumable
# (work_dirs/zoo/records).
zoo: data
	$(PYTHON) tools/zoo.py --work-dir work_dirs/zoo --out docs/zoo

report: data headline
	$(REPORT) --work-dir work_dirs/report/cityscapes-full --attacks none pgd_linf_eps4_50steps \
		--defenses none equivariance invariance random_noise $(ROTATION) --eps 2 4 8 --num-views 1 2 4 8
	$(REPORT) --work-dir work_dirs/report/cityscapes-adaptive-10 --num-images 10 --attacks none \
		pgd_linf_eps4_50steps equivariance_aware_pgd_linf_eps4_50steps --defenses none equivariance --lams 0.1 1 10
	$(REPORT) --work-dir work_dirs/report/cityscapes-through-defense-1 --num-images 1 --attacks none \
		pgd_linf_eps4_50steps bpda_eot4_linf_eps4_50steps full_gradient_linf_eps4_50steps --defenses none equivariance
	$(call publish,cityscapes-full)
	$(call publish,cityscapes-adaptive-10)
	$(call publish,cityscapes-through-defense-1)

# Defense cost vs robustness (docs/benchmark/README.md): the reference defaults and the fast preset side by side on
# the three demo models' val splits, BPDA through both on 10 images, memory of one purifier step. About 1.5 h here.
BENCH := $(PYTHON) tools/benchmark_defense.py
DEMO_CS := configs/demo/fcn_r18-d8_synthetic-cityscapes.py checkpoints/fcn_r18-d8_synthetic-cityscapes.pth
DEMO_VOC := configs/demo/fcn_r18-d8_synthetic-voc.py checkpoints/fcn_r18-d8_synthetic-voc.pth
DEMO_COCO := configs/demo/faster-rcnn_r18_fpn_synthetic-coco.py checkpoints/faster-rcnn_r18_fpn_synthetic-coco.pth
benchmark: data
	$(BENCH) $(DEMO_CS) --work-dir work_dirs/benchmark/cityscapes --settings equivariance equivariance_fast
	$(PYTHON) tools/robustness_report.py $(DEMO_CS) --work-dir work_dirs/benchmark/cityscapes-bpda-10 --num-images 10 \
		--attacks none pgd_linf_eps4_50steps bpda_eot1_linf_eps4_20steps --defenses none equivariance equivariance_fast
	$(BENCH) $(DEMO_COCO) --work-dir work_dirs/benchmark/coco --settings equivariance equivariance_fast
	$(BENCH) $(DEMO_VOC) --work-dir work_dirs/benchmark/voc --settings equivariance equivariance_fast
	$(BENCH) configs/demo/fcn_r18-d8_synthetic-cityscapes.py --memory --size 1024 2048 --num-views 1 4 8 \
		--work-dir work_dirs/benchmark/memory-fcn-1024x2048
	for part in cityscapes cityscapes-bpda-10 coco voc memory-fcn-1024x2048; do mkdir -p docs/benchmark/$$part && \
		cp work_dirs/benchmark/$$part/*.md work_dirs/benchmark/$$part/*.csv work_dirs/benchmark/$$part/*.png \
		docs/benchmark/$$part/ 2>/dev/null || true; done

# The presets on all three axes (clean, PGD, the adaptive proxy through each: BPDA + APGD, 2 draws per step, 20
# steps) on the val splits, the reference beside them (docs/benchmark/clean-price/README.md, issue #22). Hours here;
# resumable cell by cell. Each part's cells and per-image records land in docs/benchmark/clean-price/val-<model>/.
PROXY := 'bpda_apgd_eot4_linf_eps4_50steps:eot=2,steps=20'
benchmark-val: data
	$(BENCH) $(DEMO_CS) --work-dir work_dirs/benchmark/val-cityscapes --settings equivariance equivariance_fast \
		equivariance_flip equivariance_flip_tta tta --reference equivariance --no-adaptive equivariance --adaptive $(PROXY)
	$(BENCH) $(DEMO_VOC) --work-dir work_dirs/benchmark/val-voc --settings equivariance equivariance_flip_tta \
		equivariance_flip tta equivariance_fast --reference equivariance --no-adaptive equivariance equivariance_fast \
		--adaptive $(PROXY)
	$(BENCH) $(DEMO_COCO) --work-dir work_dirs/benchmark/val-coco --settings equivariance equivariance_fast \
		equivariance_fast_flip_merge tta_flip equivariance_flip equivariance_fast_eps8_flip_wbf tta_flip_wbf \
		--reference equivariance --no-adaptive equivariance tta_flip equivariance_flip tta_flip_wbf --adaptive $(PROXY)
	for part in val-cityscapes val-voc val-coco; do $(PYTHON) tools/misc/publish_cells.py work_dirs/benchmark/$$part \
		docs/benchmark/clean-price/$$part; done

test: install
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

# One-line bugs applied one at a time (in a copy of the checkout): every one must make its tests fail.
break-check: install
	$(PYTHON) tools/dev/break_check.py

clean:
	rm -rf work_dirs .pytest_cache .hypothesis

"""Mean equivariance score (the normalised S̄ of docs/method.md, in [−1, 1]) of the clean, attacked and purified inputs
of a robust test run,
and how well the score alone tells clean from attacked images (ROC-AUC)."""
import logging

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.registry import METRICS

STAGES = ('clean', 'attacked', 'purified')  # the inputs a robust test step may see, in order (RobustModel)
MIN_AUC_IMAGES = 10


def roc_auc(positives, negatives):
    """P(score of a positive > score of a negative), ties counting half: the area under the ROC curve."""
    pos, neg = np.asarray(positives, float)[:, None], np.asarray(negatives, float)[None, :]
    if pos.size == 0 or neg.size == 0:
        return float('nan')
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


@METRICS.register_module()  # mmengine's root registry: found under default_scope mmseg and mmdet alike
class EquivarianceMetric(BaseMetric):
    """Reads the ``equivariance_scores`` that :class:`mmequi.models.RobustModel` stores per image and reports
    ``equivariance/<stage>`` (mean score per stage) and ``equivariance/auc_clean_vs_attacked`` (ROC-AUC of the
    score as a detector of attacked inputs: clean images should score higher)."""
    default_prefix = 'equivariance'

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            if 'equivariance_scores' not in sample:
                raise ValueError('EquivarianceMetric needs the predictions of a RobustModel with score=True '
                                 '(add mmequi RobustTestHook to custom_hooks)')
            self.results.append(dict(sample['equivariance_scores']))

    def compute_metrics(self, results):
        stages = [s for s in STAGES if all(s in r for r in results)]
        metrics = {stage: float(np.mean([r[stage] for r in results])) for stage in stages}
        if 'attacked' in stages:
            if len(results) < MIN_AUC_IMAGES:
                print_log(f'equivariance/auc_clean_vs_attacked is computed from {len(results)} image(s): with fewer '
                          f'than {MIN_AUC_IMAGES} it says little (one image gives 0, 0.5 or 1)', logger='current',
                          level=logging.WARNING)
            metrics['auc_clean_vs_attacked'] = roc_auc([r['clean'] for r in results],
                                                       [r['attacked'] for r in results])
        return metrics

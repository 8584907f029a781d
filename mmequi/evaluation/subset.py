"""Metrics of a subset run score the evaluated images only.

mmdet's ``CocoMetric`` evaluates against every image of its annotation file unless told which (``img_ids``): on a
subset (``test_dataloader.dataset.indices``, ``--num-images``) the objects of the images never run count as missed,
and the mAP falls with the subset's size. Telling it the ids of the images the dataset holds fixes that.
"""


def evaluate_dataset_images_only(metrics, dataset):
    """Restrict the COCO metrics among ``metrics`` to the images of ``dataset`` (unless they name their own)."""
    from mmdet.evaluation import CocoMetric
    for metric in metrics:
        if isinstance(metric, CocoMetric) and metric.img_ids is None:
            metric.img_ids = [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))]

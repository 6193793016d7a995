"""The programs behind the benchmark tools, in the spirit of MMDetection's
``mmdet/utils/benchmark.py``: ``tools/`` parses the command line and calls
them.

- :mod:`.comparison` (``tools/benchmark.py``): HigherHRNet beside MMPose's
  other bottom-up models: parameters, GFLOPs, latencies, peak memory
  (:mod:`.memory_probe`, a fresh process per model) and AP, reported by
  :mod:`.comparison_report` as Markdown, CSV and a plot;
- :mod:`.overfit` (``tools/overfit_benchmark.py``): the tiny model trained on
  four real images without augmentation, loss and AP per evaluation;
- :mod:`.decoder` (``tools/benchmark_decoder.py``): the AE grouping decoder
  beside its previous version, MMPose's decoder and the reference loop,
  stage by stage;
- :mod:`.overhead` (``tools/benchmark_overhead.py``): ``inference_bottomup``
  against the two forward passes of flip test, and BatchNorm fusion;
- :mod:`.throughput` (``tools/benchmark_throughput.py``): images/s of
  batched inference at several batch sizes, with the decode share;
- :mod:`.stage_timer`: where a run spends its time;
- :mod:`.machine`: what the reports say about the machine.

Nothing here is imported by ``import higherhrnet_plugin``, nor by importing
this package: each module brings the libraries it needs.
"""

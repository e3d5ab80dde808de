"""Analysis behind ``tools/analysis_tools``: parameter counts, benchmarks."""
from .lora_benchmark import benchmark_lora, format_benchmark
from .param_count import build_model_on_meta, count_parameters, format_counts
from .recognition_benchmark import (benchmark_recognition,
                                    format_recognition_benchmark)
from .seed_summary import format_summary, read_test_metrics, summarize_runs

__all__ = [
    'build_model_on_meta', 'count_parameters', 'format_counts',
    'benchmark_lora', 'format_benchmark', 'benchmark_recognition',
    'format_recognition_benchmark', 'read_test_metrics', 'summarize_runs',
    'format_summary'
]

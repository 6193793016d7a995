from .test_time_aggregation import aggregate_test_outputs

__all__ = ['aggregate_test_outputs']

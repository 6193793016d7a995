from .inference import inference_bottomup_batch, network_inputs

__all__ = ['inference_bottomup_batch', 'network_inputs']

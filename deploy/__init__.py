"""Robot runtime (numpy + onnxruntime + unitree_legged_sdk only; never imports torch)."""

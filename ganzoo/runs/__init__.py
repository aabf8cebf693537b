"""The run format: what a run is on disk and how it is read back. Checkpoints (safetensors with a
manifest), run folders, sample grids and exports, the networks a checkpoint rebuilds. Everything
above the core reads it; it knows nothing of training or evaluation."""

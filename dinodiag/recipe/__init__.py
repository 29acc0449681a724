"""What a run trains, as data, without torch: the typed training config (``config``:
:class:`TrainConfig` and its sections, each field's range and help, the knob table), the
training presets (``presets``), a DINOv2 config file read as a TrainConfig (``dinov2``: one key
map), each preset's differences from DINOv2 (``preset_diff``) and the command line's flags,
generated from the knob table (``flags``). ``dinodiag.train`` runs what this layer describes;
the dashboard plans runs with it without importing the loop (or torch)."""

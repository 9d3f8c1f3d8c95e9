"""Per-task target builders, run in the loader workers (the datamodule's ``targets``).

Each module turns a raw sample and its JSON into the tensors its task trains on (masks, boxes,
event labels, questions, dialogs, MOS, captions, separation waveforms); they import only the
data layer, never the task modules, so workers stay light.
"""

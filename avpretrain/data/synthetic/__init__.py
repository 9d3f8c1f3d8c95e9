"""The synthetic world: clips with known ground truth for every task, in the shard format.

``config`` (:class:`SynthConfig`) sets the world, ``classes`` the class specs, ``scene`` lays
objects out, ``render`` draws frames, ``audio`` renders their sounds, ``questions`` writes the
question-answer pairs, ``clip`` assembles one clip and ``world`` writes the shards
(``avpretrain synth``). ``av_quality_world`` writes the quality task's world: those clips degraded
by known severities (``degrade``), with their MOS (``avpretrain synth-quality``).
"""

from avpretrain.data.synthetic.config import SynthConfig
from avpretrain.data.synthetic.world import write_world

__all__ = ["SynthConfig", "write_world"]

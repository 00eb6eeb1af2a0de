"""The engine: trains the runs of a cell with continuous batching on all local devices.

- `scheduler.py`: the loop that fills slots, runs segments, retires and refills runs;
- `slots.py`: which run each slot holds, the queue, segment lengths;
- `starts.py`: a run's keys, initial point and step size;
- `run_state.py`: the batch's state (`RunState`), what is static (`TrainSpec`), slots;
- `optimizers.py`: the optax optimizers and step-size schedules;
- `step.py`: one update of every running run; `stop_rule.py`: why a run stops;
- `segments.py`: one jitted training segment of up to S optimizer steps;
- `phases.py`: float32 to float64, and paused runs going on;
- `tracing.py`: a segment that records every step, for replays;
- `flow.py`: gradient flow's solvers;
- `pauses.py`: what a paused or stopped run gets on the host between segments.
"""

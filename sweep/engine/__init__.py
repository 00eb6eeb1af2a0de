"""The engine: trains the runs of a cell with continuous batching on all local devices.

- `scheduler.py`: the loop that fills slots, runs segments, retires and refills runs;
- `slots.py`: which run each slot holds, the queue, segment lengths;
- `starts.py`: a run's keys, initial point and step size;
- `segments.py`: one jitted training segment of up to S optimizer steps;
- `pauses.py`: what a paused or stopped run gets on the host between segments.
"""

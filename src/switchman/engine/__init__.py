"""Pure signals-and-actions engine: payload flattening, filter evaluation, action rules, run state.

Stdlib only, no I/O, no clock: callers pass in everything, including time. The semantics follow
Unleash's SDK constraint evaluator; see docs/adr/0003-filter-semantics.md for the choices made.
"""

"""The course material, apart from the library: what the lessons need and users do not.

- :mod:`.exercises` — the checkers of every lesson's exercises (never import the answers)
- :mod:`.solutions` — reference answers (open them when you are done)
- :mod:`.naive` — the slow, wrong retrieval this project started from, kept to be measured (05)

``import cmalign`` does not import this package: lessons write
``from cmalign.course import exercises``.
"""

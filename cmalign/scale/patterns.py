"""Shard patterns: ``shards/{00000..00127}.tar`` expanded, and which of the names exist.

:func:`expand_braces` turns a pattern into its names (zero padding kept,
``{a,b}`` lists, several groups), :func:`match_files` finds which exist
(glob wildcards allowed; named pipes count as files) and which are missing,
and :func:`describe_match` is the line the commands print ("matched 126 of
128 shards ... 2 missing: ..."). A pattern that matches nothing is an error
that names it. Used by :mod:`cmalign.scale.shards` (``python -m cmalign.scale
embed``) and :mod:`cmalign.scale.wds_benchmark` (``python -m cmalign.evaluate
... --dataset webdataset``).
"""

from __future__ import annotations

import glob
import os
import re

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def _closing(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced '{{' in pattern {text!r}")


def expand_braces(pattern: str) -> list[str]:
    """Expand ``{000..127}`` ranges and ``{a,b}`` lists, as webdataset and bash do.

    A range keeps the zero padding of its bounds (``{000..002}`` gives ``000``,
    ``001``, ``002``); several groups expand to their product, in order.
    A pattern without braces is returned as it is.
    """
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    end = _closing(pattern, start)
    body, head, tail = pattern[start + 1 : end], pattern[:start], pattern[end + 1 :]
    match = _RANGE.match(body)
    if match:
        lo, hi = match.groups()
        width = len(lo) if lo.lstrip("-").startswith("0") or len(lo) == len(hi) else 0
        step = 1 if int(hi) >= int(lo) else -1
        options = [f"{k:0{width}d}" for k in range(int(lo), int(hi) + step, step)]
    else:
        options, depth, item = [], 0, ""
        for char in body:
            if char == "," and depth == 0:
                options.append(item)
                item = ""
                continue
            depth += {"{": 1, "}": -1}.get(char, 0)
            item += char
        options.append(item)
        options = [x for option in options for x in expand_braces(option)]
    return [head + option + rest for option in options for rest in expand_braces(tail)]


def _is_stream(path: str) -> bool:
    """A file, or a named pipe (a shard streamed in by another program)."""
    return os.path.exists(path) and not os.path.isdir(path)


def _is_stream(path: str) -> bool:
    """A file, or a named pipe (a shard streamed in by another program)."""
    return os.path.exists(path) and not os.path.isdir(path)


def match_files(spec: str) -> tuple[list[str], int, list[str]]:
    """Expand ``spec`` and find its files.

    Returns
    -------
    files : list of str, in pattern order (each once)
    expanded : int, how many names the braces expanded to
    missing : list of str, the names that matched nothing

    Raises
    ------
    FileNotFoundError
        Nothing matches (the message names ``spec`` and its first expansion).
    """
    names = expand_braces(os.path.expanduser(spec))
    files, missing = [], []
    for name in names:
        found = sorted(glob.glob(name)) if glob.has_magic(name) else []
        if found:
            files += [f for f in found if _is_stream(f)]
        elif _is_stream(name):
            files.append(name)
        else:
            missing.append(name)
    if not files:
        first = f" (first of {len(names)} names: {names[0]!r})" if len(names) > 1 else ""
        raise FileNotFoundError(f"input {spec!r} matched no file{first}")
    return list(dict.fromkeys(files)), len(names), missing


def describe_match(spec: str, n_files: int, expanded: int, missing: list[str], kind: str) -> str:
    """``matched 126 of 128 shards (webdataset) for 'x/{000..127}.tar'; 2 missing: ...``."""
    head = (f"matched {n_files} of {expanded} shards" if missing
            else f"matched {n_files} shard{'s' if n_files != 1 else ''}")
    text = f"{head} ({kind}) for {spec!r}"
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        text += f"; {len(missing)} missing: {shown}"
    return text

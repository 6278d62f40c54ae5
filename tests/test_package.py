"""The package face: every exported name is tagged with the notebook that introduces it."""

import re

import helpers


def test_every_exported_name_is_tagged_with_its_notebook():
    table = helpers.__doc__.split("========  =")[2]  # the rows between the header and the last rule
    tagged = set(re.findall(r"[A-Za-z_]+", table))
    missing = [name for name in helpers.__all__ if name not in tagged]
    assert not missing, f"add to the table in helpers/__init__.py: {missing}"

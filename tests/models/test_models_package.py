import re
from pathlib import Path

import privrec
import privrec.testing.models as conformance
from privrec import models


def test_all_is_sorted_and_complete():
    assert models.__all__ == sorted(models.__all__)
    public = {name for name in vars(models) if not name.startswith("_") and name[0].isupper()}
    assert public == set(models.__all__)
    assert conformance.__all__ == sorted(conformance.__all__)


def test_only_models_import_implicit():
    root = Path(privrec.__file__).parent
    pattern = re.compile(r"^\s*(import implicit|from implicit)", re.MULTILINE)
    offenders = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
                 if pattern.search(p.read_text()) and p.relative_to(root).parts[0] != "models"]
    assert offenders == []

"""The error types the emulator reports are named in one module."""

from __future__ import annotations

import re
from pathlib import Path

import modelambda
from modelambda.local import errortypes, pyric

SRC = Path(modelambda.__file__).resolve().parent
LITERAL = re.compile(r"""["'](?:Runtime|Sandbox|Function)\.[A-Z]\w*["']""")


def _constants(module: object) -> dict[str, str]:
    return {name: value for name, value in vars(module).items()
            if name.isupper() and isinstance(value, str) and LITERAL.fullmatch(repr(value))}


def test_the_runtime_clients_copies_agree_with_the_module() -> None:
    # pyric.py runs inside environments, where it cannot import errortypes: its copies
    # must be the same names with the same values
    copies = _constants(pyric)
    assert set(copies) == {"MALFORMED_HANDLER_NAME", "IMPORT_MODULE_ERROR",
                           "USER_CODE_SYNTAX_ERROR", "HANDLER_NOT_FOUND", "UNKNOWN"}
    assert copies == {name: getattr(errortypes, name) for name in copies}


def test_no_error_type_is_spelled_out_anywhere_else() -> None:
    assert len(_constants(errortypes)) == len(set(_constants(errortypes).values())) >= 14
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "errortypes.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            definition = path.name == "pyric.py" and re.match(r"[A-Z_]+ = ", line)
            if LITERAL.search(line) and not definition:
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert found == []

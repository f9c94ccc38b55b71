# Prints the requirements a Poetry project declares for its main group, as PEP 508 lines, and
# writes the versions poetry.lock pins (if any) to the constraints file named by argv[1].
# Run with the build venv's Python, where Poetry (and so poetry-core) is installed.
import pathlib
import sys
import tomllib

from poetry.core.factory import Factory

project = pathlib.Path.cwd()
package = Factory().create_poetry(project).package
for dependency in package.requires:
    if not dependency.is_optional():
        print(dependency.to_pep_508())

pins = []
lock = project / "poetry.lock"
if lock.is_file():
    for locked in tomllib.loads(lock.read_text()).get("package", []):
        pins.append(f"{locked['name']}=={locked['version']}")
pathlib.Path(sys.argv[1]).write_text("".join(line + "\n" for line in pins))

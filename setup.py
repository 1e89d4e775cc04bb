"""Where each ``medcl`` import name lives in the repository.

Every import name is under ``medcl`` (``medcl.contrastive``, ``medcl.io``, ``medcl.dbsam``, ...)
while the source keeps the repository's layout: the shared layers in ``shared/``, one folder per
application in ``apps/``. setuptools' ``package_dir`` map does this for wheel and editable
installs alike; everything else about the distribution is in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOTS = {
    "medcl": "apps/medcl",
    "medcl.contrastive": "shared/contrastive",
    "medcl.io": "shared/io",
    "medcl.util": "shared/util",
    "medcl.dbsam": "apps/dbsam",
    "medcl.pirads": "apps/pirads",
    "medcl.mvcnet": "apps/mvcnet",
    "medcl.sepclr": "apps/sepclr",
    "medcl.core": "apps/core",
}



class BuildPyWithCards(build_py):
    """Ship ``data_cards/*.yaml`` inside ``medcl.io`` so a wheel install finds the cards
    (an editable install reads them from the repository's ``data_cards/``)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib, "medcl", "io", "data_cards")
        target.mkdir(parents=True, exist_ok=True)
        for card in sorted(Path(__file__).parent.joinpath("data_cards").glob("*.yaml")):
            shutil.copy2(card, target / card.name)


setup(
    cmdclass={"build_py": BuildPyWithCards},
    package_dir=ROOTS,
    packages=[f"{name}.{sub}" if sub else name
              for name, folder in ROOTS.items() for sub in ["", *find_packages(folder)]],
)

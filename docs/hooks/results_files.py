"""MkDocs hook: the figures in results/*.png become site files results/NAME.png.

The benchmarks write their pictures into the repository's results/ folder,
which the README shows; the docs link the same files (`results/NAME.png`
from a page at the top of docs/) without a copy that could go stale.
"""

from pathlib import Path

from mkdocs.structure.files import File


def on_files(files, config):
    root = Path(config["config_file_path"]).parent
    for picture in sorted((root / "results").glob("*.png")):
        files.append(File(f"results/{picture.name}", src_dir=str(root),
                          dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files

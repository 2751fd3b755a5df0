"""The README's Python snippet runs as written, from the repository's root (its example photo is there)."""
import re

from .conftest import ROOT


def test_readme_python_snippet_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S)
                   if block.startswith("from fer_model import EmotionRecognizer"))
    (tmp_path / "web").symlink_to(ROOT / "web")  # the outputs land in a scratch folder, not in the checkout
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})
    assert (tmp_path / "annotated.png").is_file() and (tmp_path / "saliency.png").is_file()


def test_readme_batch_snippet_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S)
                   if block.startswith("from fer_model import batch"))
    (tmp_path / "web").symlink_to(ROOT / "web")
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    printed = re.search(r"print\(record\[\"counts\"\]\)\s+# (\{.*\})", snippet).group(1)
    assert scope["record"]["counts"] == eval(printed)
    assert list((tmp_path / "results" / "faces").glob("*.parquet"))


def test_the_readme_links_only_to_files_that_exist():
    for folder, text in [(ROOT, (ROOT / "README.md").read_text())] + [
            (path.parent, path.read_text()) for path in (ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)\)", text):
            assert (folder / target).exists(), f"{target} (linked from {folder})"


def test_what_the_readme_snippets_write_in_the_checkout_is_ignored_by_git():
    """Run from the repository's root, the snippets' outputs (annotated.png, saliency.png, results/) stay out of
    `git status`."""
    readme = (ROOT / "README.md").read_text()
    snippets = "".join(re.findall(r"```python\n(.*?)```", readme, re.S))
    written = set(re.findall(r'\.save\("([^"/]+)"\)', snippets)) | set(re.findall(r'batch\.run\(.*?, "([^"/]+)/"\)', snippets))
    ignored = {line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
               if line.startswith("/")}
    assert written >= {"annotated.png", "saliency.png", "results"} and written <= ignored, written - ignored

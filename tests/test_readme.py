"""The README's Python snippet runs as written."""
import re

from .conftest import ROOT


def test_readme_python_snippet_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})
    assert (tmp_path / "annotated.png").is_file() and (tmp_path / "saliency.png").is_file()

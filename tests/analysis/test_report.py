"""The HTML report treats every value from the data as text: a hostile category cannot inject script."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import mloop

EXPLOIT = "</script><script>alert(document.cookie)</script>"


def test_hostile_values_and_column_names_are_escaped() -> None:
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"x": rng.normal(size=n), f"group{EXPLOIT}": rng.choice(["safe", EXPLOIT], n)})
    frame["y"] = (frame["x"] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    result = mloop.analyze(model, frame, label="y", slices=[f"group{EXPLOIT}"], sensitive=[f"group{EXPLOIT}"])
    page = result.to_html()
    assert "alert(document.cookie)</script>" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(document.cookie)" in page
    embedded = page.split('id="mloop-analysis-result">', 1)[1].split("</script>", 1)[0]
    import html

    assert EXPLOIT in {s["value"] for s in json.loads(html.unescape(embedded))["slices"]}

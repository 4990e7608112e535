"""The floor of bench/serving.py: a bare Starlette + uvicorn endpoint around the same scikit-learn predict.

    python bench/peers/bare_starlette.py MODEL_FOLDER PORT [frame|array]

What a careful hand-written service does: parse the JSON records, build a DataFrame,
call the estimator's predict, answer JSON. No validation, no metrics, no log.
``array`` is the stricter floor: the values go to predict as a NumPy array in the
training column order (no feature-name checks; it trusts every client to send the
right keys, which is what mloop's signature check makes safe).
"""

import sys

import orjson
import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mloop.registry import load_model


def main() -> None:
    model = load_model(sys.argv[1]).native  # the scikit-learn estimator itself
    columns = list(model.feature_names_in_)
    as_array = len(sys.argv) > 3 and sys.argv[3] == "array"
    if as_array:
        import warnings

        import numpy as np

        warnings.filterwarnings("ignore", message="X does not have valid feature names")

    async def predict(request: Request) -> Response:
        records = orjson.loads(await request.body())
        if as_array:
            predictions = model.predict(np.array([[r[c] for c in columns] for r in records], dtype="float64"))
        else:
            predictions = model.predict(pd.DataFrame(records))
        return Response(orjson.dumps({"predictions": predictions.tolist()}), media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health/ready", ready)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""The anchor: titiler's stock COG tiler (one factory, no cache), served by uvicorn."""

from fastapi import FastAPI
from titiler.core.factory import TilerFactory

app = FastAPI()
app.include_router(TilerFactory().router)

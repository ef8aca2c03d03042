from collections.abc import Iterator
import pytest, pyogrio
from sqlalchemy import Engine
from layers.settings import Settings
from tests.conftest import live_server_for

def test_probe(seeded: Engine, settings: Settings) -> None:
    with live_server_for(settings) as server:
        for url in (f"OGCAPI:{server}/ogc/collections/hospitals", f"OGCAPI:{server}/ogc/collections"):
            try:
                layers = pyogrio.list_layers(url)
                print("LAYERS", url, layers[:5], len(layers))
            except Exception as e:
                print("ERR", url, e)
        try:
            df = pyogrio.read_dataframe(f"OGCAPI:{server}/ogc/collections/hospitals", layer=12 if False else None)
            print("READ", len(df))
        except Exception as e:
            print("READERR", e)
